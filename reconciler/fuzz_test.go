package reconciler

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// FuzzDiff builds a desired and an observed state from the fuzz input,
// applies Diff's plan to the hand-written fake drivers and checks that
//
//   - the plan never deletes a resource of another instance or an unmanaged
//     one, of a held bottle, of a suspended one, or of a protected bottle
//     whose spec is gone;
//   - one pass converges: a second Diff over what the fakes then hold plans
//     nothing at all (what the rules hold back, a capped teardown, a
//     conflict, a bundle still starting, shows as notes, not operations),
//     and every desired bottle that nothing holds back is whole.
//
// The seeds in testdata/fuzz/FuzzDiff run with every `go test`. To search
// for more:
//
//	go test ./reconciler -run '^$' -fuzz FuzzDiff -fuzztime 60s
func FuzzDiff(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		w := buildWorld(data)
		o := w.observe(t)
		plan := Diff(w.desired, o, DiffOptions{Instance: inst, MaxDeletes: w.maxDeletes})
		for _, op := range plan.Ops {
			if why := w.forbidden(op, o); why != "" {
				t.Fatalf("%s %s %s: %s\n%s\n%s", op.Action, op.Role, op.Name, why, w, plan)
			}
		}
		ex := &Executor{Drivers: w.drivers, Concurrency: 3, Log: logr.Discard()}
		for name, res := range ex.Apply(context.Background(), plan) {
			if res.Err != nil {
				t.Fatalf("bottle %s: %v\n%s\n%s", name, res.Err, w, plan)
			}
		}
		again := Diff(w.desired, w.observe(t), DiffOptions{Instance: inst, MaxDeletes: w.maxDeletes})
		if !again.Empty() {
			t.Fatalf("one pass did not converge; second plan:\n%s\nfirst plan:\n%s\n%s", again, plan, w)
		}
		held := map[string]bool{}
		for _, n := range again.Notes {
			held[n.Bottle] = true
		}
		o = w.observe(t)
		for name, db := range w.desired.Bottles {
			if held[name] {
				continue
			}
			ob := o.Bottles[name]
			if len(ob.Of(bottle.RoleNetwork)) != 1 || len(ob.Of(bottle.RoleBundle)) != 1 || len(ob.Of(bottle.RoleGuest)) != 1 || ob.Of(bottle.RoleGuest)[0].Kind != db.GuestKind {
				t.Fatalf("bottle %s is not whole after one pass: %+v\nfirst plan:\n%s\n%s", name, ob, plan, w)
			}
		}
	})
}

// world is one generated case: desired state, fakes holding the observed
// state, and what the invariants need to know about it.
type world struct {
	desired    Desired
	maxDeletes int
	drivers    map[string]Driver
	fakes      []*fakeDriver
	suspended  map[string]bool
	log        []string // how the case was built, for failure messages
}

func (w *world) String() string { return "case:\n  " + strings.Join(w.log, "\n  ") }

// reader hands out the fuzz input a byte at a time, zeros once it is used up.
type reader []byte

func (r *reader) next() byte {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return b
}

func buildWorld(data []byte) *world {
	r := reader(data)
	net, bun := newFake("net", bottle.RoleNetwork), newFake("bundle", bottle.RoleBundle)
	vm, dg := newFake("smolvm", bottle.RoleGuest), newFake("docker-guest", bottle.RoleGuest)
	net.next = netip.MustParsePrefix("10.213.100.0/29") // allocations stay clear of the generated subnets
	w := &world{
		desired:   Desired{Bottles: map[string]*DesiredBottle{}, Held: map[string]string{}},
		drivers:   map[string]Driver{"net": net, "bundle": bun, "smolvm": vm, "docker-guest": dg},
		fakes:     []*fakeDriver{net, bun, vm, dg},
		suspended: map[string]bool{},
	}
	w.maxDeletes = int(r.next()%5) - 1 // -1 (no cap) to 3
	w.log = append(w.log, fmt.Sprintf("max deletes %d", w.maxDeletes))
	if r.next()%8 == 7 {
		w.desired.PruneBlocked = "x.yaml is invalid"
		w.log = append(w.log, "prune blocked")
	}
	for i := range 5 {
		name := fmt.Sprintf("b%d", i)
		mode, variant := r.next(), r.next()
		db := fuzzBottle(name, variant, i)
		switch mode % 5 {
		case 1, 2:
			w.desired.Bottles[name] = db
		case 3:
			db.Spec.Suspend = true
			w.desired.Bottles[name] = db
			w.suspended[name] = true
		case 4:
			w.desired.Held[name] = "specs/" + name + ".yaml is invalid"
		}
		w.log = append(w.log, fmt.Sprintf("%s: mode %d, spec %+v", name, mode%5, db.Spec))

		// What exists of it: roles present, the spec they were made from,
		// their owner and their state.
		have, old, owner, state := r.next(), r.next(), r.next(), r.next()
		odb := fuzzBottle(name, old, i)
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 0}), 29)
		if old&0x80 != 0 {
			subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 8}), 29) // moved off a pinned subnet
		}
		rs := chain(odb, subnet.String())
		for j := range rs {
			x := &rs[j]
			x.Kind = map[bottle.Role]string{bottle.RoleNetwork: "net", bottle.RoleBundle: "bundle", bottle.RoleGuest: odb.GuestKind}[x.Role]
			switch owner % 6 {
			case 1:
				x.Instance, x.Labels[bottle.LabelInstance] = "other", "other" // another reconciler's
			case 2:
				x.Bottle = "" // managed, but with no bottle label
				delete(x.Labels, bottle.LabelBottle)
			case 3:
				x.Labels[bottle.LabelProtect] = "true"
			case 4:
				x.HashVersion, x.Labels[bottle.LabelHashVersion] = "0", "0" // made by an older release
			}
			switch {
			case x.Role == bottle.RoleBundle && state%4 == 1:
				x.State, x.Health = bottle.StateStopped, bottle.HealthNone
			case x.Role == bottle.RoleBundle && state%4 == 2:
				x.Health = bottle.HealthUnhealthy
			case x.Role == bottle.RoleBundle && state%4 == 3:
				x.Health = bottle.HealthStarting
			case x.Role == bottle.RoleGuest && state&4 != 0:
				x.State = bottle.StateStopped
			case x.Role == bottle.RoleGuest && state&8 != 0:
				x.Broken = "never got an address"
			case x.Role == bottle.RoleGuest && state&16 != 0:
				x.Labels[bottle.LabelBundleAddr] = "10.213.250.2"
			}
			if have&(1<<j) == 0 {
				continue
			}
			if owner%6 == 1 || owner%6 == 2 {
				// A foreign resource that does not collide with ours gets a
				// name of its own: a fake holds one resource per name.
				if have&8 == 0 {
					x.Name = "foreign-" + x.Name
				}
			}
			w.fakeFor(x.Kind).items[x.Name] = *x
		}
		w.log = append(w.log, fmt.Sprintf("%s: have %03b, old spec %+v, owner %d, state %d, subnet %s", name, have&7, odb.Spec, owner%6, state, subnet))
	}
	return w
}

// fuzzBottle is bottle i's spec, varied by v.
func fuzzBottle(name string, v byte, i int) *DesiredBottle {
	db := desiredBottle(name, func(s *spec.Spec) {
		s.Image = fmt.Sprintf("agent:%d", v&1)
		if v&2 != 0 {
			s.Egress.Allow = []string{"api.example.com"}
		}
		if v&4 != 0 {
			s.AllowCIDRs = []string{"192.0.2.0/24"}
		}
		if v&8 != 0 {
			s.Daemons = []string{"egress"}
		}
		if v&16 != 0 {
			s.Network.Subnet = fmt.Sprintf("10.213.%d.0/29", i)
		}
		if v&32 != 0 {
			s.Guest = spec.GuestDocker
		}
		if v&64 != 0 {
			s.Protect = true
		}
	})
	if db.Spec.Guest == spec.GuestDocker {
		db.GuestKind, db.GuestName = "docker-guest", bottle.Names(name, bottle.RoleGuest)+"-guest"
	}
	return db
}

func (w *world) fakeFor(kind string) *fakeDriver {
	for _, f := range w.fakes {
		if f.kind == kind {
			return f
		}
	}
	panic("no fake of kind " + kind)
}

// observe snapshots the fakes as a pass would with an empty state
// directory: protection comes from the labels alone.
func (w *world) observe(t *testing.T) Observed {
	var all []bottle.Resource
	for _, f := range w.fakes {
		rs, err := f.Observe(context.Background())
		if err != nil {
			t.Fatalf("observe %s: %v", f.kind, err)
		}
		all = append(all, rs...)
	}
	o := NewObserved(inst, all, nil)
	o.Protected = protected(nil, o)
	return o
}

// forbidden says why op must never be planned, or "".
func (w *world) forbidden(op Op, o Observed) string {
	_, desired := w.desired.Bottles[op.Bottle]
	switch {
	case w.desired.Held[op.Bottle] != "":
		return "the bottle is held"
	case w.suspended[op.Bottle]:
		return "the bottle is suspended"
	case op.Action != ActionDelete:
		return ""
	case op.Target == nil:
		return "a delete with no target"
	case op.Target.Instance != inst:
		return "the resource belongs to instance " + op.Target.Instance
	case op.Target.Bottle == "":
		return "the resource has no bottle label"
	case !desired && o.Protected[op.Bottle]:
		return "the bottle is protected and its spec is gone"
	case !desired && w.desired.PruneBlocked != "":
		return "pruning is blocked"
	}
	return ""
}
