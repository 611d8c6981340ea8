package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Teardown plans the removal of the named bottles of this instance (all of
// them with all set), guest first. Protected bottles are kept unless force
// is set. It is pure, like Diff. Names that match nothing are notes.
func Teardown(o Observed, names []string, all, force, abandon bool) Plan {
	p := &planner{step: map[string]int{}}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var sorted []string
	for n := range o.Bottles {
		if all || want[n] {
			sorted = append(sorted, n)
		}
	}
	sort.Strings(sorted)
	for _, n := range names {
		if o.Bottles[n] == nil {
			p.note(n, NoteMissing, "no resources of this bottle exist for this instance")
		}
	}
	for _, n := range sorted {
		if o.Protected[n] && !force {
			p.note(n, NoteProtected, "the bottle is protected; add --force to tear it down anyway")
			continue
		}
		if why := o.unseenGuest(o.Bottles[n]); why != "" && !abandon {
			p.note(n, NoteUnobservable, why+"; tearing down its network and bundle would leave that guest running, its egress allowed to an address the next bottle may get: make the runtime observable again, or add --abandon-guest")
			continue
		}
		p.removeAll(o.Bottles[n], "down", ReasonDown)
	}
	return Plan{Ops: p.ops, Notes: p.notes}
}

// Down tears the named bottles down (all of them with all set) and forgets
// their status. It ignores the spec directory: this is an explicit request.
//
// With abandon, a bottle whose guest cannot be observed is torn down too
// (its network and bundle), leaving that guest to whoever can see it.
func (r *Reconciler) Down(ctx context.Context, names []string, all, force, abandon bool) (*Pass, error) {
	var obs []Observer
	for _, d := range r.drivers() {
		obs = append(obs, d)
	}
	resources, unseen, err := observeAll(ctx, obs)
	if err != nil {
		return nil, err
	}
	prev, err := r.status.All()
	if err != nil {
		return nil, err
	}
	p := &Pass{Time: r.now()}
	p.Observed = NewObserved(r.cfg.Instance, resources, nil)
	p.Observed.Unobservable = unseen
	p.Observed.Protected = protected(prev, p.Observed)
	p.Plan = Teardown(p.Observed, names, all, force, abandon)
	byKind := map[string]Driver{}
	for _, d := range r.drivers() {
		byKind[d.Kind()] = d
	}
	ex := &Executor{Drivers: byKind, Concurrency: r.cfg.Concurrency, Log: r.log}
	p.Results = ex.Apply(ctx, p.Plan)
	var errs []error
	gone := 0
	for name, res := range p.Results {
		if res.Err == nil {
			gone++
			errs = append(errs, r.status.Remove(name))
		}
	}
	if gone == len(p.Observed.Bottles) {
		// Nothing of the instance is left: remove what it kept besides.
		errs = append(errs, r.cleanup(ctx))
	}
	return p, errors.Join(errs...)
}

// DownFailures lists what a Down did not do.
func (p *Pass) DownFailures() []string {
	var out []string
	for _, n := range p.Plan.Notes {
		out = append(out, fmt.Sprintf("bottle %s: %s: %s", n.Bottle, n.Kind, n.Message))
	}
	names := make([]string, 0, len(p.Results))
	for n := range p.Results {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if res := p.Results[n]; res.Err != nil {
			out = append(out, fmt.Sprintf("bottle %s: %s %s %s: %v", n, res.Failed.Action, res.Failed.Role, res.Failed.Name, res.Err))
		}
	}
	return out
}
