package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// contender is one way of bringing N bottles up and down.
type contender interface {
	name() string
	up(ctx context.Context) error
	// observe is the contender's "what is there" step: a reconciler does it
	// on every pass, so it is what a no-op costs.
	observe(ctx context.Context) error
	down(ctx context.Context) error
}

// Optional steps of a contender.
type (
	preparer    interface{ prepare() error }
	observeHook interface {
		afterObserve(ctx context.Context) error
	}
)

// observeSamples is how many times observe is timed per run.
const observeSamples = 5

// contenderResult is one contender's samples over every run.
type contenderResult struct {
	Name    string
	Skipped string // why it did not run, if it did not
	Up      []time.Duration
	Observe []time.Duration
	Down    []time.Duration
}

// measure runs every contender, one after another, runs times over; the
// contenders take turns within a run so slow drift of the host hits them
// alike.
func (w *world) measure(ctx context.Context, cs []contender, skipped map[string]string, order []string, runs int) ([]*contenderResult, error) {
	byName := map[string]*contenderResult{}
	var out []*contenderResult
	for _, n := range order {
		r := &contenderResult{Name: n, Skipped: skipped[n]}
		byName[n] = r
		out = append(out, r)
	}
	for _, c := range cs {
		if p, ok := c.(preparer); ok {
			if err := p.prepare(); err != nil {
				return out, err
			}
		}
	}
	for run := 1; run <= runs; run++ {
		for _, c := range cs {
			if err := w.runOne(ctx, c, byName[c.name()], run, runs); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// runOne is one run of one contender: up, observe, down, then a check that
// nothing is left.
func (w *world) runOne(ctx context.Context, c contender, r *contenderResult, run, runs int) error {
	fail := func(step string, err error) error {
		err = fmt.Errorf("%s %s (run %d): %w", c.name(), step, run, err)
		// Tear down what it made, so the next attempt starts clean.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		_ = c.down(dctx)
		return err
	}
	d, err := timeIt(func() error { return c.up(ctx) })
	if err != nil {
		return fail("up", err)
	}
	r.Up = append(r.Up, d)
	var obs []time.Duration
	for range observeSamples {
		o, err := timeIt(func() error { return c.observe(ctx) })
		if err != nil {
			return fail("observe", err)
		}
		obs = append(obs, o)
	}
	r.Observe = append(r.Observe, obs...)
	if h, ok := c.(observeHook); ok {
		if err := h.afterObserve(ctx); err != nil {
			return fail("counted no-op", err)
		}
	}
	down, err := timeIt(func() error { return c.down(ctx) })
	if err != nil {
		return fail("down", err)
	}
	r.Down = append(r.Down, down)
	w.logf("run %d/%d %-16s up %-8s observe %-8s down %s", run, runs, c.name(),
		fmtDur(d), fmtDur(summarize(obs).Median), fmtDur(down))

	removed, err := w.sweep(ctx)
	if err != nil {
		return fmt.Errorf("%s: clean up after teardown: %w", c.name(), err)
	}
	if len(removed) > 0 {
		w.logf("warning: %s's teardown left %d things behind, removed: %s", c.name(), len(removed), strings.Join(removed, ", "))
	}
	return sleep(ctx, time.Second)
}

// warmup brings one bottle up and down with bottle-reconcile, so the
// bundle image exists and caches are warm, counting its Docker API calls.
func (w *world) warmup(ctx context.Context, proxy *countingProxy) (up, down map[string]int, err error) {
	r := w.rc("w")
	if err := r.writeSpec(w.tag()+"-w", guestEnvVal); err != nil {
		return nil, nil, err
	}
	var env []string
	if proxy != nil {
		env = proxy.env()
		proxy.reset()
	}
	if err := r.once(ctx, "warm-up bottle-reconcile --once", env); err != nil {
		return nil, nil, errors.Join(err, r.down(context.WithoutCancel(ctx), nil))
	}
	if proxy != nil {
		up = proxy.snapshot()
		proxy.reset()
	}
	if err := r.down(ctx, env); err != nil {
		return nil, nil, fmt.Errorf("warm-up: %w", err)
	}
	if proxy != nil {
		down = proxy.snapshot()
	}
	return up, down, nil
}
