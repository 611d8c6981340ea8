package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// guestShell is what exec and cp need of a guest driver: its normal
// observation, to find the guest, and a way in.
type guestShell interface {
	Observe(ctx context.Context) ([]bottle.Resource, error)
	Exec(ctx context.Context, r bottle.Resource, x guestio.Exec) (int, error)
	CopyTo(ctx context.Context, r bottle.Resource, src, dst string) error
	CopyFrom(ctx context.Context, r bottle.Resource, src, dst string) error
}

// Why a bottle's guest cannot be used; the message says which and what to
// do.
var (
	errNoBottle = errors.New("bottle missing")
	errNotReady = errors.New("bottle not ready")
)

// findGuest finds bottle name's guest of this instance through its
// driver's observation (one label-filtered list) and checks that it runs.
// The spec says which driver; a bottle without a valid spec (an invalid
// edit holds it as it is) is looked for with every driver there is.
func (c *common) findGuest(ctx context.Context, e *env, name string) (guestShell, bottle.Resource, error) {
	res, err := spec.LoadDir(c.dir, spec.Options{Pool: c.pool})
	if err != nil {
		return nil, bottle.Resource{}, err
	}
	kinds, hasSpec := []string(nil), false
	for _, b := range res.Bottles {
		if b.Metadata.Name == name {
			kinds, hasSpec = []string{b.Spec.Guest}, true
		}
	}
	if kinds == nil {
		for k := range e.guests {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
	}
	var observeErrs []error
	for _, k := range kinds {
		d := e.guests[k]
		sh, ok := d.(guestShell)
		if !ok {
			// A runtime that is not installed: its Observe says why.
			_, err := d.Observe(ctx)
			observeErrs = append(observeErrs, err)
			continue
		}
		rs, err := sh.Observe(ctx)
		if err != nil {
			observeErrs = append(observeErrs, err)
			continue
		}
		for _, r := range rs {
			if r.Bottle != name || r.Instance != c.instance {
				continue
			}
			if r.State != bottle.StateRunning {
				detail := string(r.State)
				if r.Detail != "" && r.Detail != detail {
					detail += ", " + r.Detail
				}
				return nil, r, fmt.Errorf("%w: bottle %q: its guest %s is not running (%s); a pass starts it (bottle-reconcile status says why it is down)",
					errNotReady, name, r.Name, detail)
			}
			return sh, r, nil
		}
	}
	if hasSpec && len(observeErrs) > 0 {
		return nil, bottle.Resource{}, fmt.Errorf("bottle %q: find its guest: %w", name, errors.Join(observeErrs...))
	}
	if hasSpec {
		return nil, bottle.Resource{}, fmt.Errorf("%w: bottle %q has a spec in %s but no guest (instance %s): converge it first (bottle-reconcile --once %s)",
			errNotReady, name, c.dir, c.instance, c.dir)
	}
	return nil, bottle.Resource{}, fmt.Errorf("%w: no bottle %q: no valid spec for it in %s and no guest of instance %s (check the name, --dir and --instance)",
		errNoBottle, name, c.dir, c.instance)
}
