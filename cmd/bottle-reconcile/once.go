package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

// lockInstance takes the instance lock, printing the holder when it is held.
func lockInstance(ctx context.Context, c *common, stderr io.Writer) (*reconciler.Lock, int) {
	lock, err := reconciler.AcquireLock(ctx, c.stateDir, c.lockTimeout)
	var held *reconciler.LockHeldError
	switch {
	case errors.As(err, &held):
		fmt.Fprintf(stderr, "bottle-reconcile: another reconciler is running for instance %s: %s (lock %s)\n", c.instance, held.Holder, held.Path)
		return nil, exitLockHeld
	case err != nil:
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return nil, exitFail
	}
	return lock, exitOK
}

// once runs one pass and reports whether every bottle converged.
func once(ctx context.Context, c *common, stdout, stderr io.Writer) int {
	e, err := c.build(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitFail
	}
	defer e.Close()
	lock, code := lockInstance(ctx, c, stderr)
	if lock == nil {
		return code
	}
	defer lock.Release()
	p, err := e.rec.Reconcile(ctx)
	if err != nil && p == nil {
		fmt.Fprintf(stderr, "bottle-reconcile: pass failed, nothing was changed: %v\n", err)
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
	}
	return report(p, stdout, stderr)
}

// report prints a pass's outcome: the failures, one per line, or a summary.
func report(p *reconciler.Pass, stdout, stderr io.Writer) int {
	failures := p.Failures()
	c := p.Plan.Count()
	fmt.Fprintf(stdout, "%d bottle(s): %d created, %d deleted, %d started, %d stopped, %d repaired\n",
		len(p.Statuses), c[reconciler.ActionCreate], c[reconciler.ActionDelete], c[reconciler.ActionStart], c[reconciler.ActionStop], c[reconciler.ActionRepair])
	for _, f := range failures {
		fmt.Fprintln(stderr, f)
	}
	if len(failures) > 0 {
		fmt.Fprintf(stderr, "%d problem(s); see above\n", len(failures))
		return exitFail
	}
	return exitOK
}
