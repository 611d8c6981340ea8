package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// settleTime lets the daemon finish what a converge or teardown left in
// flight (shims exiting, namespaces going) before a window is measured.
const settleTime = 3 * time.Second

// footprint brings N bottles up with bottle-reconcile and measures what
// they cost idle (idle > 0) and how a watching reconciler reacts (watch).
func (w *world) footprint(ctx context.Context, idle time.Duration, watch bool) (*idleResult, *watchResult, error) {
	r := w.rc("i")
	bs := layout(w.tag()+"-i", 3, w.n)
	var ir *idleResult
	if idle > 0 {
		if err := sleep(ctx, settleTime); err != nil {
			return nil, nil, err
		}
		w.logf("idle: baseline, no bottles, %s", idle)
		base, err := sampleIdle(ctx, idle)
		if err != nil {
			return nil, nil, err
		}
		ir = &idleResult{Baseline: base}
	}
	for _, b := range bs {
		if err := r.writeSpec(b.Name, guestEnvVal); err != nil {
			return nil, nil, err
		}
	}
	w.logf("idle/watch: bringing %d bottles up with bottle-reconcile", len(bs))
	if err := r.once(ctx, "bottle-reconcile --once (footprint)", nil); err != nil {
		return nil, nil, err
	}
	run := func() (*watchResult, error) {
		if ir != nil {
			if err := sleep(ctx, settleTime); err != nil {
				return nil, err
			}
			w.logf("idle: %d bottles up, no reconciler running, %s", len(bs), idle)
			with, err := sampleIdle(ctx, idle)
			if err != nil {
				return nil, err
			}
			ir.Bottles = with
		}
		if !watch {
			return nil, nil
		}
		return w.watch(ctx, r, bs)
	}
	wr, err := run()
	// Down whatever happened, the watch's extra bottle included.
	if derr := r.down(context.WithoutCancel(ctx), nil); derr != nil {
		err = errors.Join(err, fmt.Errorf("idle/watch teardown: %w", derr))
	}
	return ir, wr, err
}
