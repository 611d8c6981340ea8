package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

// downReport prints what down did, in the past tense: each bottle's
// removed resources, in the order they went, what failed, and what was
// held back and why. A plan says what would happen; this says what did.
func downReport(w io.Writer, p *reconciler.Pass) {
	names := make([]string, 0, len(p.Results))
	for n := range p.Results {
		names = append(names, n)
	}
	slices.Sort(names)
	removed, failed := 0, 0
	for _, n := range names {
		res := p.Results[n]
		var done []string
		for _, op := range res.Done {
			if op.Action == reconciler.ActionDelete {
				done = append(done, fmt.Sprintf("%s %s", op.Role, op.Name))
			}
		}
		switch {
		case res.Err != nil:
			failed++
			fmt.Fprintf(w, "bottle %s: not torn down: removing %s %s failed", n, res.Failed.Role, res.Failed.Name)
			if len(done) > 0 {
				fmt.Fprintf(w, " (removed before that: %s)", strings.Join(done, ", "))
			}
			fmt.Fprintln(w)
		default:
			removed++
			fmt.Fprintf(w, "bottle %s: removed %s\n", n, strings.Join(done, ", "))
		}
	}
	for _, note := range p.Plan.Notes {
		fmt.Fprintf(w, "bottle %s: left in place: %s: %s\n", note.Bottle, note.Kind, note.Message)
	}
	fmt.Fprintf(w, "%d bottle(s) torn down, %d failed, %d left in place.\n", removed, failed, len(p.Plan.Notes))
}
