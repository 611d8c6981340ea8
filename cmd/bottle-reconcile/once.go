package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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
	e, release, code := c.openLocked(ctx, stderr)
	if e == nil {
		return code
	}
	defer release()
	p, err := e.rec.Reconcile(ctx)
	// A bundle that another run left starting (a pass killed mid-create, a
	// bundle Docker restarted) holds its guest back with a "waiting" note.
	// One pass would report that as not converged although nothing is
	// wrong, so --once passes again until such bundles settle.
	var earlier []reconciler.Op
	for deadline := time.Now().Add(startingWait); err == nil && waitingOnly(p) && time.Now().Before(deadline); {
		e.log.Info("bundles are starting; passing again once they settle", "bottles", waitingBottles(p))
		select {
		case <-ctx.Done():
		case <-time.After(startingPoll):
		}
		if ctx.Err() != nil {
			break
		}
		earlier = append(earlier, p.Plan.Ops...)
		next, nerr := e.rec.Reconcile(ctx)
		if next == nil {
			fmt.Fprintf(stderr, "bottle-reconcile: pass failed: %v\n", nerr)
			return exitFail
		}
		p, err = next, nerr
	}
	if p != nil && len(earlier) > 0 {
		// The summary counts the operations of every pass of this run.
		p.Plan.Ops = append(earlier, p.Plan.Ops...)
	}
	if err != nil && p == nil {
		fmt.Fprintf(stderr, "bottle-reconcile: pass failed, nothing was changed: %v\n", err)
		return exitFail
	}
	rc := report(p, stdout, stderr)
	if err != nil {
		// The bottles' work is reported above; what failed here is the
		// pass's own record (a full or read-only state directory), which
		// the next pass needs: not a success.
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		rc = exitFail
	}
	return rc
}

// How long and how often --once passes again while bundles are starting. A
// bundle settles (healthy, or unhealthy and replaced) well within the bundle
// driver's health timeout.
const (
	startingWait = 30 * time.Second
	startingPoll = 500 * time.Millisecond
)

// waitingOnly reports whether the pass converged but for bottles waiting for
// a starting bundle.
func waitingOnly(p *reconciler.Pass) bool {
	if p == nil || len(p.Specs.Problems) > 0 {
		return false
	}
	for _, r := range p.Results {
		if r.Err != nil {
			return false
		}
	}
	waiting := false
	for _, n := range p.Plan.Notes {
		switch {
		case n.Kind == reconciler.NoteWaiting:
			waiting = true
		case !n.Kind.Settled():
			return false
		}
	}
	return waiting
}

func waitingBottles(p *reconciler.Pass) []string {
	var out []string
	for _, n := range p.Plan.Notes {
		if n.Kind == reconciler.NoteWaiting {
			out = append(out, n.Bottle)
		}
	}
	return out
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
