package main

import (
	"context"
	"fmt"
	"io"
)

// cmdDown tears bottles down in reverse order, whatever the specs say.
func cmdDown(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("down", stderr, "down [--dir DIR] [--force] [--abandon-guest] NAME... | --all")
	c.register(fs)
	all := fs.Bool("all", false, "tear down every bottle of this instance")
	force := fs.Bool("force", false, "tear down protected bottles too")
	abandon := fs.Bool("abandon-guest", false, "tear down bottles whose guest cannot be observed (its runtime is missing) anyway, leaving that guest running")
	dir := fs.String("dir", "specs", "the spec directory whose instance to act on")
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if *all == (len(names) > 0) {
		fmt.Fprintln(stderr, "bottle-reconcile down: name the bottles to tear down, or pass --all (not both)")
		return exitUsage
	}
	if err := c.resolve(*dir); err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitUsage
	}
	e, release, code := c.openLocked(ctx, stderr)
	if e == nil {
		return code
	}
	defer release()
	p, err := e.rec.Down(ctx, names, *all, *force, *abandon)
	if err != nil && p == nil {
		fmt.Fprintf(stderr, "bottle-reconcile: down failed, nothing was changed: %v\n", err)
		return exitFail
	}
	downReport(stdout, p)
	failures := p.DownFailures()
	if err != nil {
		failures = append(failures, err.Error())
	}
	for _, f := range failures {
		fmt.Fprintln(stderr, f)
	}
	if len(failures) > 0 {
		return exitFail
	}
	return exitOK
}
