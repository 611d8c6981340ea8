package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// shells are the shells completion scripts are made for.
var shells = []string{"bash", "zsh"}

// generator returns the script writer for a shell, or nil.
func generator(shell string) func(w io.Writer, cmds []cmdFlags) {
	switch shell {
	case "bash":
		return bashCompletion
	case "zsh":
		return zshCompletion
	}
	return nil
}

// cmdCompletion prints a completion script for a shell.
func cmdCompletion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("completion", stderr, "completion bash|zsh")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	gen := generator(first(pos))
	if len(pos) != 1 || gen == nil {
		fmt.Fprintf(stderr, "bottle-reconcile completion: name a shell: %s\n", strings.Join(shells, " or "))
		return exitUsage
	}
	gen(stdout, collectFlags())
	return exitOK
}

// flagCollector is an error writer that also keeps every flag set made with
// it (newFlagSet): running a command with -h then yields the command's real
// flags, so completion never lists flags by hand.
type flagCollector struct {
	io.Writer
	sets []*flag.FlagSet
}

// cmdFlags is one command as completion sees it. The default command
// (reconcile a directory) has the empty name.
type cmdFlags struct {
	name  string
	args  string
	flags []*flag.Flag
}

// collectFlags asks every listed command, and the default one, for its
// flag set by running it with -h, which returns right after parsing.
func collectFlags() []cmdFlags {
	cmds := append([]command{{name: "", args: "dir", run: cmdReconcile}}, commands()...)
	var out []cmdFlags
	for _, c := range cmds {
		if c.hidden {
			continue
		}
		col := &flagCollector{Writer: io.Discard}
		c.run(context.Background(), []string{"-h"}, io.Discard, col)
		cf := cmdFlags{name: c.name, args: c.args}
		for _, fs := range col.sets {
			fs.VisitAll(func(f *flag.Flag) { cf.flags = append(cf.flags, f) })
		}
		out = append(out, cf)
	}
	return out
}

// flagValues says how to complete the value of a flag, by name: dir, file,
// or a list of words. A test checks each name is a real flag.
var flagValues = map[string]string{
	"state-dir":     "dir",
	"dir":           "dir",
	"smolvm":        "file",
	"bundle-binary": "file",
	"probe-binary":  "file",
	"o":             "text json",
	"format":        "text json github",
	"log-format":    "auto text json",
}

// dashed spells a flag as users type it: -v and -o, --everything-else.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// flagSummary is the first clause of a flag's usage, for zsh's descriptions.
func flagSummary(usage string) string {
	if i := strings.Index(usage, ";"); i > 0 {
		usage = usage[:i]
	}
	return strings.TrimSpace(usage)
}

// cmdBottleNames prints the names of the bottles in a spec directory, one a
// line, for completion: valid ones and those whose file is invalid but
// names them. It prints nothing when the directory cannot be read.
func cmdBottleNames(args []string, stdout, _ io.Writer) int {
	res, err := spec.LoadDir(orElse(first(args), "specs"), spec.Options{})
	if err != nil {
		return exitFail
	}
	names := map[string]bool{}
	for _, b := range res.Bottles {
		names[b.Metadata.Name] = true
	}
	for n := range res.Held {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		fmt.Fprintln(stdout, n)
	}
	return exitOK
}
