package smolvm

import (
	"context"
	"fmt"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// checkLayer sets r.Drift when m's host layer is not what its labels say,
// and r.Broken when m has no host layer labels at all (made by a version
// without the layer): starting it again cannot add them, so it is
// replaced.
func (d *Driver) checkLayer(ctx context.Context, r *bottle.Resource, m machine) {
	if _, ok := m.Labels[labelReach]; !ok {
		r.Broken = "made without the host layer labels (by an older bottle-reconcile); it is replaced to get its host layer"
		return
	}
	s, err := layerOf(m.Labels)
	if err != nil {
		r.Drift = "host layer: " + err.Error()
		return
	}
	r.Drift = d.layer.drift(ctx, s, m.vmmPID())
}

// Repair implements reconciler.Repairer: it puts a machine's host layer
// rules back and moves its VMM into its cgroup.
func (d *Driver) Repair(ctx context.Context, r bottle.Resource) error {
	if d.layer == nil {
		return nil
	}
	byName, err := d.list(ctx)
	if err != nil {
		return fmt.Errorf("smolvm: repair machine %q: %w", r.Name, err)
	}
	m, ok := byName[r.Name]
	if !ok || !m.ours() {
		return nil // gone, or not ours: the next pass sees it
	}
	s, err := layerOf(m.Labels)
	if err != nil {
		return fmt.Errorf("smolvm: repair machine %q: host layer: %w", r.Name, err)
	}
	if err := d.layer.repair(ctx, s, m.vmmPID()); err != nil {
		return fmt.Errorf("smolvm: repair machine %q: %w", r.Name, err)
	}
	return nil
}

// Cleanup implements reconciler.Cleaner: the instance's cgroup goes once
// it holds no bottle.
func (d *Driver) Cleanup(ctx context.Context, instance string) error {
	if d.layer == nil {
		return nil
	}
	return d.layer.cleanup(ctx, instance)
}
