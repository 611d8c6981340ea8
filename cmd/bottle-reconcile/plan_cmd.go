package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// cmdPlan prints what a pass would do. It only ever calls Plan, which holds
// observers, never the executor: it is dry by construction.
func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("plan", stderr, "plan [--detailed-exitcode] [-o text|json] [DIR]")
	c.register(fs)
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	output := fs.String("o", "text", "output: text or json")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 1 || (*output != "text" && *output != "json") {
		fs.Usage()
		return exitUsage
	}
	return plan(ctx, &c, first(pos), true, *detailed, *output, stdout, stderr)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// plan prints the plan of the next pass. With watch, it also notes what a
// watcher would hold back of it, which a --once pass does at once.
func plan(ctx context.Context, c *common, dir string, watch, detailed bool, output string, stdout, stderr io.Writer) int {
	e, code := c.open(dir, stderr, exitFail)
	if e == nil {
		return code
	}
	defer e.Close()
	p, err := e.rec.Plan(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: plan: %v\n", err)
		return exitFail
	}
	failures := p.Failures()
	if watch {
		p.Plan.Notes = append(p.Plan.Notes, p.WatchHolds(time.Now())...)
	}
	if output == "json" {
		out := struct {
			Instance string            `json:"instance"`
			Changes  bool              `json:"changes"`
			Ops      []reconciler.Op   `json:"ops"`
			Notes    []reconciler.Note `json:"notes"`
			Problems []spec.Problem    `json:"problems"`
		}{c.instance, !p.Plan.Empty(), p.Plan.Ops, p.Plan.Notes, p.Specs.Problems}
		if out.Ops == nil {
			out.Ops = []reconciler.Op{}
		}
		if out.Notes == nil {
			out.Notes = []reconciler.Note{}
		}
		if out.Problems == nil {
			out.Problems = []spec.Problem{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		fmt.Fprintf(stdout, "Plan for %s (instance %s); nothing has been changed.\n\n", c.dir, c.instance)
		for _, pr := range p.Specs.Problems {
			fmt.Fprintln(stdout, pr)
		}
		fmt.Fprint(stdout, p.Plan.String())
	}
	switch {
	case len(p.Specs.Problems) > 0:
		return exitFail
	case detailed && !p.Plan.Empty():
		return 2
	case !detailed && len(failures) > 0:
		return exitOK // a plan that lists problems is still a plan
	}
	return exitOK
}
