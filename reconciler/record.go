package reconciler

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// statuses computes every bottle's status after a pass from what was
// observed and what the executor did. It is pure, like Diff.
func statuses(p *Pass, prev []Status, now time.Time) []Status {
	before := map[string]Status{}
	for _, s := range prev {
		before[s.Bottle] = s
	}
	notes := map[string]Note{}
	for _, n := range p.Plan.Notes {
		notes[n.Bottle] = n
	}
	names := map[string]bool{}
	for n := range p.Desired.Bottles {
		names[n] = true
	}
	for n := range p.Desired.Held {
		names[n] = true
	}
	for n := range p.Observed.Bottles {
		names[n] = true
	}
	var out []Status
	for n := range names {
		old := before[n]
		db := p.Desired.Bottles[n]
		fp := old.Fingerprint
		if db != nil {
			fp = fingerprint(db)
		}
		if p.sched.reset(n) || fp != old.Fingerprint {
			old.Failures, old.NextRetry = 0, nil // the spec changed: backoff starts over
		}
		st := Status{Bottle: n, LastReconciled: now.UTC(), Protect: old.Protect, Source: old.Source, Fingerprint: fp}
		if db != nil {
			st.Source, st.Protect = db.Source, db.Spec.Protect
		}
		res := p.Results[n]
		st.Resources = resourcesAfter(p.Observed.Bottles[n], res)
		note, noted := notes[n]
		switch {
		case res != nil && res.Err != nil && Terminal(res.Err):
			// Trying again fixes nothing until something changes: no backoff.
			st.State, st.Reason = StatusBlocked, res.Failed.Cause
			st.LastError, st.Failures = res.Err.Error(), old.Failures
		case res != nil && res.Err != nil:
			st.State, st.Reason = StatusFailed, res.Failed.Cause
			st.LastError = res.Err.Error()
			st.Failures = old.Failures + 1
			st.NextRetry = p.sched.retryAt(st.Failures, now)
		case noted && note.Kind == NoteBackoff:
			st.State, st.Reason = StatusFailed, note.Message
			st.LastError, st.Failures, st.NextRetry = old.LastError, old.Failures, old.NextRetry
		case noted && note.Kind == NoteUnchanged:
			st.State, st.Reason = StatusBlocked, old.Reason
			st.LastError, st.Failures = old.LastError, old.Failures
		case noted && note.Kind == NoteHeld:
			st.State, st.Reason = StatusInvalid, note.Message
			st.LastError, st.Failures = old.LastError, old.Failures
		case noted && note.Kind == NoteSuspended:
			st.State, st.Reason = StatusSuspended, note.Message
		case noted && note.Kind == NoteUnobservable:
			st.State, st.Reason = StatusFailed, "guest cannot be observed"
			st.LastError, st.Failures = note.Message, old.Failures
		case noted && note.Kind == NoteWaiting:
			st.State, st.Reason = StatusProgressing, note.Message
		case noted && note.Kind == NoteConflict:
			// Another instance's resource: planned anew each pass, at no cost.
			st.State, st.Reason, st.LastError = StatusBlocked, "name conflict", note.Message
			st.Failures = old.Failures
		case noted: // protected, capped, blocked: the spec is gone, the bottle stays
			st.State, st.Reason = StatusOrphaned, note.Message
		case db == nil:
			if len(st.Resources) == 0 {
				continue // torn down: forgotten by gone()
			}
			st.State, st.Reason = StatusProgressing, "being torn down"
		default:
			st.State = StatusReady
			if res != nil {
				st.Reason = "converged this pass"
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Bottle, b.Bottle) })
	return out
}

// gone lists recorded bottles that no longer exist in any form.
func gone(p *Pass, prev []Status) []string {
	keep := map[string]bool{}
	for _, s := range p.Statuses {
		keep[s.Bottle] = true
	}
	var out []string
	for _, s := range prev {
		if !keep[s.Bottle] {
			out = append(out, s.Bottle)
		}
	}
	return out
}

// resourcesAfter is the observed resources with the pass's operations
// applied: deleted ones dropped, created ones added, starts and stops noted.
// A bottle has a handful of resources, so they are kept in a slice and
// found by a scan; one resource per kind and name, the last seen.
func resourcesAfter(ob *ObservedBottle, res *BottleResult) []StatusResource {
	var observed []bottle.Resource
	if ob != nil {
		observed = ob.Resources
	}
	// Pointers, so a no-op pass copies no resource; one is copied only when
	// an operation changes it.
	cur := make([]*bottle.Resource, 0, len(observed)+1)
	find := func(kind, name string) int {
		return slices.IndexFunc(cur, func(r *bottle.Resource) bool { return r.Kind == kind && r.Name == name })
	}
	set := func(r *bottle.Resource) {
		if i := find(r.Kind, r.Name); i >= 0 {
			cur[i] = r
			return
		}
		cur = append(cur, r)
	}
	for i := range observed {
		set(&observed[i])
	}
	if res != nil {
		created := 0
		for _, op := range res.Done {
			i := find(op.Kind, op.Name)
			switch op.Action {
			case ActionDelete:
				if i >= 0 {
					cur = slices.Delete(cur, i, i+1)
				}
			case ActionCreate:
				r := res.Created[created]
				created++
				if r.Name == "" {
					r.Name, r.Kind, r.Role, r.State = op.Name, op.Kind, op.Role, bottle.StateRunning
				}
				set(&r)
			case ActionStart, ActionStop:
				if i < 0 {
					continue // a plan starts and stops only what it observed
				}
				r := *cur[i]
				r.State = bottle.StateRunning
				if op.Action == ActionStop {
					r.State = bottle.StateStopped
				}
				r.Detail = ""
				cur[i] = &r
			}
		}
	}
	var out []StatusResource // nil for none, as status files have it
	if len(cur) > 0 {
		out = make([]StatusResource, 0, len(cur))
	}
	for _, r := range cur {
		sr := StatusResource{Role: r.Role, Kind: r.Kind, Name: r.Name, State: r.State, Health: r.Health, Detail: r.Detail}
		if r.Subnet.IsValid() {
			sr.Subnet = r.Subnet.String()
		}
		if r.Addr.IsValid() {
			sr.Addr = r.Addr.String()
		}
		out = append(out, sr)
	}
	slices.SortFunc(out, func(a, b StatusResource) int {
		if c := cmp.Compare(roleIndex(a.Role), roleIndex(b.Role)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
