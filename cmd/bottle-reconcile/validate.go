package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// cmdValidate checks spec files without touching Docker or smolvm, for
// pull-request review: exit 0 when every spec is valid, 1 when any is not.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr, "validate [--format text|json|github] [DIR|FILE]...")
	format := fs.String("format", "text", "output format: text, json or github (workflow annotations)")
	pool := spec.DefaultPool
	fs.Var(prefixFlag{&pool}, "subnet-pool", "the range bottle subnets are allocated from (allowCIDRs may not reach into it)")
	outside := fs.Bool(outsidePoolFlag, false, outsidePoolUsage)
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	switch *format {
	case "text", "json", "github":
	default:
		fmt.Fprintf(stderr, "bottle-reconcile validate: --format %q: want text, json or github\n", *format)
		return exitUsage
	}
	if len(paths) == 0 {
		paths = []string{"specs"}
	}
	// Offline: validate may run where the specs are reviewed, not where the
	// reconciler runs, so what only that host shows is listed, not guessed.
	res, err := loadPaths(paths, spec.Options{Pool: pool, AllowSubnetOutsidePool: *outside, Offline: true})
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile validate: %v\n", err)
		return exitUsage
	}
	switch *format {
	case "json":
		out := struct {
			Valid    bool           `json:"valid"`
			Files    []string       `json:"files"`
			Bottles  []string       `json:"bottles"`
			Problems []spec.Problem `json:"problems"`
			Warnings []spec.Problem `json:"warnings"`
			// Unchecked: what only the reconciler's host can tell.
			Unchecked []spec.Problem `json:"unchecked"`
		}{res.OK(), res.Files, nil, res.Problems, res.Warnings, res.Unchecked}
		if out.Files == nil {
			out.Files = []string{}
		}
		out.Bottles = []string{}
		for _, b := range res.Bottles {
			out.Bottles = append(out.Bottles, b.Metadata.Name)
		}
		if out.Problems == nil {
			out.Problems = []spec.Problem{}
		}
		if out.Warnings == nil {
			out.Warnings = []spec.Problem{}
		}
		if out.Unchecked == nil {
			out.Unchecked = []spec.Problem{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	case "github":
		for _, p := range res.Problems {
			fmt.Fprintln(stdout, githubAnnotation("error", p))
		}
		for _, p := range res.Warnings {
			fmt.Fprintln(stdout, githubAnnotation("warning", p))
		}
		for _, p := range res.Unchecked {
			fmt.Fprintln(stdout, githubAnnotation("notice", p))
		}
		fmt.Fprintln(stdout, summary(res))
	default:
		for _, p := range res.Problems {
			fmt.Fprintln(stdout, p)
		}
		for _, p := range res.Warnings {
			fmt.Fprintln(stdout, warningText(p))
		}
		for _, p := range res.Unchecked {
			fmt.Fprintln(stdout, "note:", p)
		}
		fmt.Fprintln(stdout, summary(res))
	}
	if !res.OK() {
		return exitFail
	}
	return exitOK
}

// loadPaths loads directories and single files together, so a name claimed
// in two of them is caught.
func loadPaths(paths []string, opts spec.Options) (*spec.Result, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err // *fs.PathError already names p
		}
		if !st.IsDir() {
			files = append(files, p) // named explicitly: checked whatever its name
			continue
		}
		r, err := spec.LoadDir(p, opts)
		if err != nil {
			return nil, err
		}
		files = append(files, r.Files...)
	}
	return spec.LoadFiles(files, opts), nil
}

func summary(r *spec.Result) string {
	invalid := map[string]bool{}
	for _, p := range r.Problems {
		invalid[p.File] = true
	}
	if len(r.Files) == 0 {
		return "no spec files found (a spec file ends in .yaml or .yml)"
	}
	warnings := ""
	if len(r.Warnings) > 0 {
		warnings = fmt.Sprintf(", %d warning(s)", len(r.Warnings))
	}
	if len(invalid) == 0 {
		return fmt.Sprintf("%d spec file(s) valid%s", len(r.Files), warnings)
	}
	return fmt.Sprintf("%d of %d spec file(s) invalid, %d problem(s)%s", len(invalid), len(r.Files), len(r.Problems), warnings)
}

// warningText renders a warning as file:line:col: warning: field: message.
func warningText(p spec.Problem) string {
	if p.Field != "" {
		p.Message = p.Field + ": " + p.Message
	}
	p.Field = "warning"
	return p.String()
}

// githubAnnotation renders a problem as a GitHub Actions workflow command
// of the given level (error, notice).
func githubAnnotation(level string, p spec.Problem) string {
	var b strings.Builder
	b.WriteString("::" + level + " file=")
	b.WriteString(escapeProperty(p.File))
	if p.Line > 0 {
		fmt.Fprintf(&b, ",line=%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ",col=%d", p.Column)
		}
	}
	b.WriteString("::")
	msg := p.Message
	if p.Field != "" {
		msg = p.Field + ": " + msg
	}
	b.WriteString(escapeData(msg))
	return b.String()
}

// escapeData and escapeProperty follow the workflow-command escaping rules.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
