package sidecar

import (
	"context"
	"fmt"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
)

// ensureEgress returns the ID of the instance's egress network, creating it
// if missing. It holds the subnet lock so concurrent creates make one. The
// ID is remembered, so a pass creating many bundles looks it up once; a
// connect that finds it gone calls forgetEgress and asks again.
func (d *Driver) ensureEgress(ctx context.Context, instance string) (string, error) {
	d.egressMu.Lock()
	id, ok := d.egress[instance]
	d.egressMu.Unlock()
	if ok {
		return id, nil
	}
	id, err := d.makeEgress(ctx, instance)
	if err == nil {
		d.egressMu.Lock()
		d.egress[instance] = id
		d.egressMu.Unlock()
	}
	return id, err
}

// forgetEgress drops the remembered ID of the instance's egress network.
func (d *Driver) forgetEgress(instance string) {
	d.egressMu.Lock()
	defer d.egressMu.Unlock()
	delete(d.egress, instance)
}

func (d *Driver) makeEgress(ctx context.Context, instance string) (string, error) {
	name := dockerx.EgressNetworkName(instance)
	op := fmt.Sprintf("create egress network %q", name)
	if id, err := d.findEgress(ctx, op, name, instance); err != nil || id != "" {
		return id, err
	}
	release, err := d.lock.Acquire(ctx)
	if err != nil {
		return "", wrap(op, err)
	}
	defer release()
	if id, err := d.findEgress(ctx, op, name, instance); err != nil || id != "" {
		return id, err
	}
	no := false
	resp, err := d.api.NetworkCreate(ctx, name, network.CreateOptions{
		Driver:     "bridge",
		EnableIPv6: &no,
		// Subnet from Docker's default pools: one per instance is cheap.
		Options: map[string]string{
			// Bundles of different bottles share this bridge; without ICC
			// they cannot reach each other over it.
			"com.docker.network.bridge.enable_icc": "false",
		},
		Labels: map[string]string{
			bottle.LabelManagedBy: bottle.ManagedByValue,
			bottle.LabelInstance:  instance,
			bottle.LabelRole:      dockerx.RoleEgress,
		},
	})
	if cerrdefs.IsConflict(err) {
		// Someone without our lock made it meanwhile; take it if it is ours.
		return d.findEgress(ctx, op, name, instance)
	}
	if err != nil {
		return "", wrap(op, err)
	}
	d.log.V(1).Info("egress network created", "network", name)
	return resp.ID, nil
}

// findEgress returns the egress network's ID, "" if it does not exist, or an
// error if that name is taken by something not ours.
func (d *Driver) findEgress(ctx context.Context, op, name, instance string) (string, error) {
	n, err := d.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", wrap(op, err)
	}
	if n.Name != name { // inspect also matches ID prefixes
		return "", nil
	}
	if err := nameTaken(op, "network", n.Labels, instance); err != nil {
		return "", err
	}
	if n.Labels[bottle.LabelRole] != dockerx.RoleEgress {
		return "", fmt.Errorf("dockernet: %s: a network of that name exists with role %q: %w", op, n.Labels[bottle.LabelRole], cerrdefs.ErrConflict)
	}
	return n.ID, nil
}

// Cleanup implements reconciler.Cleaner: an instance with no bottles left
// needs no egress network.
func (d *Driver) Cleanup(ctx context.Context, instance string) error {
	return d.RemoveEgressNetwork(ctx, instance)
}

// RemoveEgressNetwork removes the instance's egress network. A network still
// in use by a bundle is left alone without error; one that is missing is
// success.
func (d *Driver) RemoveEgressNetwork(ctx context.Context, instance string) error {
	d.forgetEgress(instance)
	name := dockerx.EgressNetworkName(instance)
	n, err := d.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) || (err == nil && n.Name != name) {
		return nil
	}
	op := fmt.Sprintf("remove egress network %q", name)
	if err != nil {
		return wrap(op, err)
	}
	if err := nameTaken(op, "network", n.Labels, instance); err != nil {
		return err
	}
	return dockerx.RemoveNetwork(ctx, d.api, driverName, op, n.ID, instance, true)
}
