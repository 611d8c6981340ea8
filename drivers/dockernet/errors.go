package dockernet

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	cerrdefs "github.com/containerd/errdefs"
)

// wrap is dockerx.Wrap for this driver.
func wrap(op string, err error) error { return dockerx.Wrap("dockernet", op, err) }

// isPoolOverlap reports whether Docker refused a network because its subnet
// overlaps another network's. Docker gives it no class of its own, so this
// reads the text; it is fragile and the only place that does. Docker 20.10
// through 28 say: "Pool overlaps with other one on this address space".
func isPoolOverlap(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Pool overlaps with other one on this address space")
}

// nameTaken is dockerx.NameTaken for this driver.
func nameTaken(op, what string, labels map[string]string, instance string) error {
	return dockerx.NameTaken("dockernet", op, what, labels, instance)
}

// otherInstance refuses to touch what another reconciler instance owns:
// Delete is given a resource by ID or name, and by name it may find what
// someone else has made since it was observed. An empty instance accepts
// any.
func otherInstance(op, what string, labels map[string]string, instance string) error {
	if instance == "" || labels[bottle.LabelInstance] == instance {
		return nil
	}
	return fmt.Errorf("dockernet: %s: the %s belongs to bottle-reconcile instance %q, not %q; leaving it alone: %w",
		op, what, labels[bottle.LabelInstance], instance, cerrdefs.ErrConflict)
}

// checkWantLabels makes sure what Create is about to make will be observed:
// without the managed-by and instance labels it would leak.
func checkWantLabels(op string, w bottle.Want) error {
	if w.Name == "" {
		return fmt.Errorf("dockernet: %s: no name: %w", op, cerrdefs.ErrInvalidArgument)
	}
	if w.Labels[bottle.LabelManagedBy] != bottle.ManagedByValue || w.Labels[bottle.LabelInstance] == "" {
		return fmt.Errorf("dockernet: %s: labels must set %s=%s and %s: %w", op,
			bottle.LabelManagedBy, bottle.ManagedByValue, bottle.LabelInstance, cerrdefs.ErrInvalidArgument)
	}
	return nil
}

var errNotOurs = errors.New("not managed by bottle-reconcile; leaving it alone")
