package probe

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostaddr"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Observer is a driver's normal observation: every resource it manages, of
// every instance, in one label-filtered list (reconciler.Driver.Observe).
// The probe sees the bottle as the reconciler sees it.
type Observer interface {
	Observe(ctx context.Context) ([]bottle.Resource, error)
}

// observe finds the bottle's network, bundle address, guest and the other
// bottles of the instance through the drivers' observation.
func observe(ctx context.Context, o Options) (Target, guest, error) {
	t := specTarget(o)
	nets, err := ofInstance(ctx, o.Network, o.Instance, "networks")
	if err != nil {
		return t, nil, err
	}
	bundles, err := ofInstance(ctx, o.Bundle, o.Instance, "bundles")
	if err != nil {
		return t, nil, err
	}
	if err := t.placeBottles(o.Bottle, nets, bundles); err != nil {
		return t, nil, fmt.Errorf("probe: bottle %q of instance %s: %w", o.Bottle, o.Instance, err)
	}
	t.HostAddrs = hostAddrs()
	// Best effort: without them the probes of the public addresses are
	// left out, the rest stand.
	t.PublicAddrs, _ = hostaddr.Unrefused(nil)
	g, err := findGuest(ctx, o)
	if err != nil {
		return t, nil, err
	}
	return t, g, nil
}

// specTarget is what the spec alone says of the target.
func specTarget(o Options) Target {
	t := Target{Bottle: o.Bottle, GuestKind: o.Spec.Guest, Daemons: o.Spec.Daemons, Workspace: o.Spec.Workspace}
	for _, a := range o.Spec.Egress.Allow {
		if r, err := spec.ParseHostRule(a); err == nil {
			t.Allow = append(t.Allow, r)
		}
	}
	return t
}

// ofInstance is d's observation narrowed to the instance's resources.
func ofInstance(ctx context.Context, d Observer, instance, what string) ([]bottle.Resource, error) {
	if d == nil {
		return nil, fmt.Errorf("probe: no driver to observe %s with", what)
	}
	rs, err := d.Observe(ctx)
	if err != nil {
		return nil, fmt.Errorf("probe: observe %s of instance %s: %w", what, instance, err)
	}
	var out []bottle.Resource
	for _, r := range rs {
		if r.Instance == instance {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// placeBottles fills in the bottle's subnet, gateway and bundle address,
// and its peers, from the instance's networks and bundles. A bundle's
// address is the one observed, or its pinned one (.2) while it is down.
func (t *Target) placeBottles(name string, nets, bundles []bottle.Resource) error {
	bundleAt := map[string]netip.Addr{}
	for _, b := range bundles {
		if b.Addr.IsValid() {
			bundleAt[b.Bottle] = b.Addr
		}
	}
	addrOf := func(b string, p netip.Prefix) netip.Addr {
		if a, ok := bundleAt[b]; ok && p.Contains(a) {
			return a
		}
		return bottle.BundleAddr(p)
	}
	for _, n := range nets {
		if !n.Subnet.IsValid() {
			continue
		}
		if n.Bottle == name {
			t.Subnet = n.Subnet
			continue
		}
		t.Peers = append(t.Peers, Peer{Bottle: n.Bottle, Bundle: addrOf(n.Bottle, n.Subnet), Guest: bottle.GuestAddr(n.Subnet)})
	}
	if !t.Subnet.IsValid() {
		return fmt.Errorf("no network: is it up? %w", cerrdefs.ErrNotFound)
	}
	t.Gateway, t.Bundle = bottle.Gateway(t.Subnet), addrOf(name, t.Subnet)
	return nil
}

// findGuest finds the bottle's guest in its driver's observation; it must
// run, or there is nothing to probe.
func findGuest(ctx context.Context, o Options) (guest, error) {
	if o.Spec.Guest != spec.GuestDocker && o.Spec.Guest != spec.GuestSmolvm {
		return nil, fmt.Errorf("probe: bottle %q: unknown guest kind %q", o.Bottle, o.Spec.Guest)
	}
	if o.Guest == nil {
		return nil, fmt.Errorf("probe: bottle %q: no %s guest driver", o.Bottle, o.Spec.Guest)
	}
	gs, err := ofInstance(ctx, o.Guest, o.Instance, o.Spec.Guest+" guests")
	if err != nil {
		return nil, err
	}
	var running []bottle.Resource
	for _, r := range gs {
		if r.Bottle == o.Bottle && r.State == bottle.StateRunning {
			running = append(running, r)
		}
	}
	if len(running) != 1 {
		return nil, fmt.Errorf("probe: bottle %q has %d running %s guest(s), want one: %w", o.Bottle, len(running), o.Spec.Guest, cerrdefs.ErrNotFound)
	}
	return driverGuest{d: o.Guest, r: running[0], kind: o.Spec.Guest}, nil
}
