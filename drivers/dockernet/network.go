package dockernet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
)

// NetworkKind is the network driver's kind.
const NetworkKind = "dockernet-network"

// LabelSubnet records the subnet a network was created with, for humans;
// the subnet Docker reports is what counts.
const LabelSubnet = "dev.bottle-reconcile.subnet"

// NetworkDriver manages bottle networks: internal bridges with a pinned /29.
type NetworkDriver struct {
	base
}

// NewNetworkDriver returns the network driver. api is usually a
// *client.Client made with client.FromEnv and API version negotiation.
func NewNetworkDriver(api dockerAPI, opts Options, log logr.Logger) (*NetworkDriver, error) {
	b, err := newBase(api, opts, log)
	if err != nil {
		return nil, err
	}
	return &NetworkDriver{base: b}, nil
}

// Kind implements reconciler.Driver.
func (d *NetworkDriver) Kind() string { return NetworkKind }

// Role implements reconciler.Driver.
func (d *NetworkDriver) Role() bottle.Role { return bottle.RoleNetwork }

// Observe implements reconciler.Driver with one NetworkList, of one
// bottle's network under bottle.WithScope.
func (d *NetworkDriver) Observe(ctx context.Context) ([]bottle.Resource, error) {
	f := dockerx.ScopedFilter(ctx, filters.Arg("label", bottle.LabelRole+"="+string(bottle.RoleNetwork)))
	nets, err := d.api.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, wrap("list networks", err)
	}
	out := make([]bottle.Resource, 0, len(nets))
	for _, n := range nets {
		out = append(out, networkResource(n))
	}
	// Sorted so repeated passes see the same order whatever the daemon's.
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func networkResource(n network.Summary) bottle.Resource {
	r := bottle.Labelled(NetworkKind, bottle.RoleNetwork, n.Name, n.Labels)
	r.ID, r.State, r.Subnet = n.ID, bottle.StateRunning, ipv4Subnet(n)
	if !n.Internal {
		r.Detail = "not internal"
	}
	return r
}

func ipv4Subnet(n network.Summary) netip.Prefix {
	for _, c := range n.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
			return p
		}
	}
	return netip.Prefix{}
}

// Create implements reconciler.Driver. The subnet is w.Subnet when set, or
// else the first free /29 of the pool. A network of ours of that name that
// already exists (a concurrent create) is returned as it is if it matches.
func (d *NetworkDriver) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	op := fmt.Sprintf("create network %q", w.Name)
	if err := checkWantLabels(op, w); err != nil {
		return bottle.Resource{}, err
	}
	if w.Subnet.IsValid() {
		if !w.Subnet.Addr().Is4() || w.Subnet.Bits() > dockerx.SubnetBits {
			return bottle.Resource{}, fmt.Errorf("dockernet: %s: subnet %s must be IPv4 and /%d or larger: %w",
				op, w.Subnet, dockerx.SubnetBits, cerrdefs.ErrInvalidArgument)
		}
		w.Subnet = w.Subnet.Masked()
	}
	release, err := d.lock.Acquire(ctx)
	if err != nil {
		return bottle.Resource{}, wrap(op, err)
	}
	defer release()

	// A second attempt covers a daemon that allocated the chosen subnet to
	// someone not holding our lock between our list and our create.
	for attempt := 1; ; attempt++ {
		r, err := d.createLocked(ctx, op, w)
		if isPoolOverlap(err) && attempt < 2 && !w.Subnet.IsValid() {
			d.log.V(1).Info("subnet taken meanwhile, retrying", "network", w.Name)
			continue
		}
		return r, err
	}
}

func (d *NetworkDriver) createLocked(ctx context.Context, op string, w bottle.Want) (bottle.Resource, error) {
	all, err := d.api.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return bottle.Resource{}, wrap(op, err)
	}
	if i := slices.IndexFunc(all, func(n network.Summary) bool { return n.Name == w.Name }); i >= 0 {
		return d.existing(op, all[i], w)
	}
	taken := dockerSubnets(all)
	host, err := hostPrefixes()
	if err != nil {
		return bottle.Resource{}, wrap(op, err)
	}
	taken = append(taken, host...)

	subnet := w.Subnet
	if subnet.IsValid() {
		for _, t := range taken {
			if t.Overlaps(subnet) {
				return bottle.Resource{}, fmt.Errorf("dockernet: %s: pinned subnet %s overlaps %s, already used by a Docker network or a host route: %w",
					op, subnet, t, cerrdefs.ErrConflict)
			}
		}
	} else if subnet, err = ChooseSubnet(d.opts.Pool, dockerx.SubnetBits, taken); err != nil {
		return bottle.Resource{}, wrap(op, fmt.Errorf("%w: %w", err, cerrdefs.ErrResourceExhausted))
	}

	no := false
	var opts map[string]string
	if w.Shape == bottle.ShapeHostless {
		// A docker guest lives on this bridge. With no host address on it,
		// the guest has no layer-3 path to the host at all (not even the
		// gateway answers ARP), so the host stays out of reach even if
		// someone flushes the firewall rules that are the other layer. A
		// smolvm guest needs the gateway: its VMM reaches the bundle from
		// the host side.
		opts = map[string]string{"com.docker.network.bridge.inhibit_ipv4": "true"}
	}
	labels := dockerx.WithLabels(w.Labels, bottle.LabelRole, string(bottle.RoleNetwork), LabelSubnet, subnet.String())
	resp, err := d.api.NetworkCreate(ctx, w.Name, network.CreateOptions{
		Driver:  "bridge",
		Options: opts,
		// Internal: the bottle network has no route out; the bundle reaches
		// the world through the instance's egress network instead.
		Internal:   true,
		EnableIPv6: &no,
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{
			Subnet:  subnet.String(),
			Gateway: bottle.Gateway(subnet).String(),
		}}},
		Labels: labels,
	})
	if err != nil {
		return bottle.Resource{}, wrap(op, err)
	}
	d.log.V(1).Info("network created", "network", w.Name, "subnet", subnet.String())
	// What a list would say of it, without the call.
	return networkResource(network.Summary{Name: w.Name, ID: resp.ID, Labels: labels, Internal: true,
		IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet.String()}}}}), nil
}

// existing decides what to do about a network that already has w's name.
func (d *NetworkDriver) existing(op string, n network.Summary, w bottle.Want) (bottle.Resource, error) {
	if err := nameTaken(op, "network", n.Labels, w.Labels[bottle.LabelInstance]); err != nil {
		return bottle.Resource{}, err
	}
	r := networkResource(n)
	switch {
	case n.Labels[bottle.LabelRole] != string(bottle.RoleNetwork):
		return r, fmt.Errorf("dockernet: %s: a network of that name exists with role %q: %w", op, n.Labels[bottle.LabelRole], cerrdefs.ErrConflict)
	case n.Labels[bottle.LabelHash] != w.Labels[bottle.LabelHash]:
		return r, fmt.Errorf("dockernet: %s: the network exists with another spec hash; delete it first: %w", op, cerrdefs.ErrConflict)
	case w.Subnet.IsValid() && r.Subnet.Masked() != w.Subnet:
		return r, fmt.Errorf("dockernet: %s: the network exists with subnet %s, not %s; delete it first: %w", op, r.Subnet, w.Subnet, cerrdefs.ErrConflict)
	}
	return r, nil
}

// Delete implements reconciler.Driver. It removes only a network carrying
// the managed-by label and disconnects nothing: a network something is still
// attached to is an error naming what.
func (d *NetworkDriver) Delete(ctx context.Context, r bottle.Resource) error {
	return dockerx.RemoveNetwork(ctx, d.api, "dockernet", fmt.Sprintf("remove network %q", r.Name), dockerx.Ref(r), r.Instance, false)
}
