package review

import (
	"fmt"
	"sort"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Change is what a spec change does to one bottle.
type Change string

// Changes, from none to the whole chain. A note of the plan that leaves a
// bottle alone (suspended, protected, capped, blocked, ...) is reported as
// its own kind.
const (
	NoChange      Change = "no-change"
	Create        Change = "create"
	Delete        Change = "delete"
	ReplaceGuest  Change = "replace-guest"  // the guest only
	ReplaceBundle Change = "replace-bundle" // the bundle; the guest is paused meanwhile and kept
	ReplaceBoth   Change = "replace-bundle-and-guest"
	Recreate      Change = "recreate" // network, bundle and guest
	Held          Change = "held"     // the head spec is invalid: the bottle is left as it is
	// Unknown: the base spec is invalid, so what a host has of the bottle
	// depends on that host.
	Unknown Change = "unknown"
)

// Bottle is the review of one bottle.
type Bottle struct {
	Name   string `json:"name"`
	Change Change `json:"change"`
	// Fields lists the spec fields that differ between base and head, by
	// name (never a value); empty for a bottle on one side only.
	Fields []string `json:"fields"`
	// Reason explains a bottle that is left alone or cannot be judged.
	Reason string `json:"reason,omitempty"`
	// Ops are the plan's operations for the bottle, in order.
	Ops []reconciler.Op `json:"ops"`
}

// Changed reports whether the bottle's resources change.
func (b Bottle) Changed() bool { return len(b.Ops) > 0 }

// Bottles reviews every bottle named in base or head, sorted by name, from
// the plan reconciler.Review made for them.
func Bottles(base, head *spec.Result, p reconciler.Plan) []Bottle {
	specs := func(r *spec.Result) map[string]spec.Spec {
		m := map[string]spec.Spec{}
		for _, b := range r.Bottles {
			m[b.Metadata.Name] = b.Spec
		}
		return m
	}
	bs, hs := specs(base), specs(head)
	ops := map[string][]reconciler.Op{}
	for _, op := range p.Ops {
		ops[op.Bottle] = append(ops[op.Bottle], op)
	}
	notes := map[string]reconciler.Note{}
	for _, n := range p.Notes {
		notes[n.Bottle] = n
	}
	names := map[string]bool{}
	for _, m := range []map[string]spec.Spec{bs, hs} {
		for n := range m {
			names[n] = true
		}
	}
	for _, m := range []map[string]string{base.Held, head.Held} {
		for n := range m {
			names[n] = true
		}
	}
	for n := range ops {
		names[n] = true
	}
	for n := range notes {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	out := make([]Bottle, 0, len(sorted))
	for _, n := range sorted {
		b := Bottle{Name: n, Fields: []string{}, Ops: ops[n]}
		bSpec, inBase := bs[n]
		hSpec, inHead := hs[n]
		if inBase && inHead {
			b.Fields = Fields(bSpec, hSpec)
		}
		note, noted := notes[n]
		switch {
		case base.Held[n] != "" && head.Held[n] == "":
			b.Change, b.Ops = Unknown, nil
			b.Reason = fmt.Sprintf("%s in the base; what a host has of this bottle depends on the host", base.Held[n])
		case noted && note.Kind == reconciler.NoteHeld:
			b.Change, b.Reason = Held, note.Message
		case noted:
			b.Change, b.Reason = Change(note.Kind), note.Message
		default:
			b.Change = classify(b.Ops)
		}
		if b.Ops == nil {
			b.Ops = []reconciler.Op{}
		}
		out = append(out, b)
	}
	return out
}

// classify names what a bottle's operations amount to.
func classify(ops []reconciler.Op) Change {
	if len(ops) == 0 {
		return NoChange
	}
	creates, deletes := map[bottle.Role]bool{}, map[bottle.Role]bool{}
	for _, op := range ops {
		switch op.Action {
		case reconciler.ActionCreate:
			creates[op.Role] = true
		case reconciler.ActionDelete:
			deletes[op.Role] = true
		}
	}
	switch {
	case len(deletes) == 0 && len(creates) == len(bottle.Roles):
		return Create
	case len(creates) == 0 && len(deletes) == len(bottle.Roles):
		return Delete
	case creates[bottle.RoleNetwork]:
		return Recreate
	case creates[bottle.RoleBundle] && creates[bottle.RoleGuest]:
		return ReplaceBoth
	case creates[bottle.RoleBundle]:
		return ReplaceBundle
	case creates[bottle.RoleGuest]:
		return ReplaceGuest
	}
	// A converged base never needs a lone start, stop or repair; should a
	// plan hold one, say what it is rather than guess.
	return Change(ops[0].Action)
}
