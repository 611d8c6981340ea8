package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// HostLayout is what a host's drivers would call a bottle's resources: their
// kinds, their guests' names and how a network gets its subnet. A review
// plans with it instead of drivers, so it needs no runtime at all.
type HostLayout struct {
	NetworkKind, BundleKind string
	// Guests maps each spec.guest value to its guest driver's layout.
	Guests map[string]GuestLayout
	// Allocate picks the subnet of a bottle that pins none, given those
	// taken, as the network driver would on a host with nothing else.
	Allocate func(taken []netip.Prefix) (netip.Prefix, error)
}

// GuestLayout is one guest driver's kind and, for a driver that names its
// guests otherwise (Namer), how.
type GuestLayout struct {
	Kind string
	Name func(bottle string) string
}

// Review plans a change of specs from base to head on a host where base is
// converged: it builds what such a host would observe from base, as its
// drivers would have created it (same names, labels and per-role hashes),
// and runs the reconciler's own Diff against head. The returned pass holds
// head's specs, the desired and observed states and the plan.
//
// Bottles that base holds (an invalid file) have nothing observed: what a
// host has of them depends on that host, so callers must not read head's
// plan for them as the change's effect.
func Review(base, head *spec.Result, layout HostLayout, cfg Config) (*Pass, error) {
	o, err := converged(base, layout, cfg.Instance)
	if err != nil {
		return nil, err
	}
	obs, guests := layout.drivers()
	p := &Pass{Specs: head, Observed: o}
	p.Desired = desired(head, obs, guests, nil)
	p.Plan = diffPass(cfg, head, &p.Desired, p.Observed, nil)
	return p, nil
}

// converged returns what a host on which specs are converged observes:
// every valid bottle's network, ready bundle and running guest.
func converged(specs *spec.Result, layout HostLayout, instance string) (Observed, error) {
	obs, guests := layout.drivers()
	d := desired(specs, obs, guests, nil)
	for _, db := range d.Bottles {
		// A suspended bottle is left as it was: converged before, as the
		// review assumes.
		db.Spec.Suspend = false
	}
	var taken []netip.Prefix
	for _, db := range d.Bottles {
		if db.Subnet.IsValid() {
			taken = append(taken, db.Subnet)
		}
	}
	// What a pass from nothing would create, made as a driver makes it.
	made := Diff(d, Observed{}, DiffOptions{Instance: instance, MaxDeletes: -1})
	subnets := map[string]netip.Prefix{}
	var resources []bottle.Resource
	for _, op := range made.Ops {
		if op.Action != ActionCreate {
			return Observed{}, fmt.Errorf("review: bottle %s: a pass from nothing would %s %s", op.Bottle, op.Action, op.Name)
		}
		w := op.Want
		if op.Role == bottle.RoleNetwork {
			s := w.Subnet
			if !s.IsValid() {
				if layout.Allocate == nil {
					return Observed{}, fmt.Errorf("review: bottle %s: no subnet allocator", op.Bottle)
				}
				var err error
				if s, err = layout.Allocate(taken); err != nil {
					return Observed{}, fmt.Errorf("review: allocate a subnet for bottle %s: %w", op.Bottle, err)
				}
				taken = append(taken, s)
			}
			subnets[op.Bottle] = s
		}
		w.Fill(subnets[op.Bottle])
		r := bottle.Labelled(op.Kind, op.Role, w.Name, w.Labels)
		r.State = bottle.StateRunning
		switch op.Role {
		case bottle.RoleNetwork:
			r.Subnet = subnets[op.Bottle]
		case bottle.RoleBundle:
			r.Addr, r.Health = w.BundleAddr, bottle.HealthHealthy
		}
		resources = append(resources, r)
	}
	o := NewObserved(instance, resources, nil)
	o.Protected = protected(nil, o)
	return o, nil
}

// drivers turns the layout into the stand-ins desired() reads kinds and
// guest names from. They observe nothing and refuse to change anything.
func (l HostLayout) drivers() ([]Observer, map[string]Driver) {
	obs := []Observer{layoutDriver{l.NetworkKind, bottle.RoleNetwork}, layoutDriver{l.BundleKind, bottle.RoleBundle}}
	guests := map[string]Driver{}
	keys := make([]string, 0, len(l.Guests))
	for k := range l.Guests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := l.Guests[k]
		var d Driver = layoutDriver{g.Kind, bottle.RoleGuest}
		if g.Name != nil {
			d = namedLayoutDriver{layoutDriver{g.Kind, bottle.RoleGuest}, g.Name}
		}
		guests[k] = d
		obs = append(obs, d)
	}
	return obs, guests
}

// errLayoutOnly is what a layout stand-in answers when asked to act.
var errLayoutOnly = errors.New("a review changes nothing")

type layoutDriver struct {
	kind string
	role bottle.Role
}

func (l layoutDriver) Kind() string                                       { return l.kind }
func (l layoutDriver) Role() bottle.Role                                  { return l.role }
func (l layoutDriver) Observe(context.Context) ([]bottle.Resource, error) { return nil, nil }
func (l layoutDriver) Create(context.Context, bottle.Want) (bottle.Resource, error) {
	return bottle.Resource{}, errLayoutOnly
}
func (l layoutDriver) Delete(context.Context, bottle.Resource) error { return errLayoutOnly }

type namedLayoutDriver struct {
	layoutDriver
	name func(string) string
}

func (n namedLayoutDriver) NameFor(bottle string) string { return n.name(bottle) }
