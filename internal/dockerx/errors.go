package dockerx

import (
	"errors"
	"fmt"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Wrap prefixes err with the driver, the operation and the resource, and
// marks a daemon that cannot be reached as unavailable so callers never take
// it for "nothing exists".
func Wrap(driver, op string, err error) error {
	if client.IsErrConnectionFailed(err) && !cerrdefs.IsUnavailable(err) {
		return fmt.Errorf("%s: %s: %w (%w)", driver, op, err, cerrdefs.ErrUnavailable)
	}
	return fmt.Errorf("%s: %s: %w", driver, op, err)
}

// Ownership is who a runtime object belongs to, judged by labels only.
type Ownership int

const (
	OwnedByUs       Ownership = iota // managed by bottle-reconcile, this instance
	OwnedByOther                     // managed by bottle-reconcile, another instance
	OwnedByNoneOfUs                  // not managed by bottle-reconcile
)

// Owner decides by labels who owns a resource. Both the managed-by and the
// instance label are needed: Docker copies image labels onto every container
// made from an image (the bundle image carries managed-by), so managed-by
// alone would claim anyone's container run from our image.
func Owner(labels map[string]string, instance string) Ownership {
	switch {
	case !Managed(labels):
		return OwnedByNoneOfUs
	case labels[bottle.LabelInstance] != instance:
		return OwnedByOther
	default:
		return OwnedByUs
	}
}

// Managed reports whether labels mark something bottle-reconcile made.
func Managed(labels map[string]string) bool {
	return labels[bottle.LabelManagedBy] == bottle.ManagedByValue && labels[bottle.LabelInstance] != ""
}

// NameTaken returns the conflict error of driver's op for a name already
// used by a what that is not ours to touch, or nil if it is ours.
func NameTaken(driver, op, what string, labels map[string]string, instance string) error {
	switch Owner(labels, instance) {
	case OwnedByNoneOfUs:
		return fmt.Errorf("%s: %s: a %s of that name exists and is not managed by bottle-reconcile; remove or rename it: %w",
			driver, op, what, cerrdefs.ErrConflict)
	case OwnedByOther:
		return fmt.Errorf("%s: %s: a %s of that name exists and belongs to bottle-reconcile instance %q; stop that instance or use another bottle name: %w",
			driver, op, what, labels[bottle.LabelInstance], cerrdefs.ErrConflict)
	}
	return nil
}

// ErrNotOurs is why a driver leaves alone what carries no managed-by label.
var ErrNotOurs = errors.New("not managed by bottle-reconcile; leaving it alone")

// OtherInstance refuses, for driver's op, to touch what another reconciler
// instance owns: Delete is given a resource by ID or name, and by name it
// may find what someone else has made since it was observed. An empty
// instance accepts any.
func OtherInstance(driver, op, what string, labels map[string]string, instance string) error {
	if instance == "" || labels[bottle.LabelInstance] == instance {
		return nil
	}
	return fmt.Errorf("%s: %s: the %s belongs to bottle-reconcile instance %q, not %q; leaving it alone: %w",
		driver, op, what, labels[bottle.LabelInstance], instance, cerrdefs.ErrConflict)
}

// CheckWantLabels makes sure what a Create is about to make will be
// observed: without a name, or the managed-by and instance labels, it would
// leak. The caller names itself and the operation.
func CheckWantLabels(w bottle.Want) error {
	if w.Name == "" {
		return fmt.Errorf("no name: %w", cerrdefs.ErrInvalidArgument)
	}
	if w.Labels[bottle.LabelManagedBy] != bottle.ManagedByValue || w.Labels[bottle.LabelInstance] == "" {
		return fmt.Errorf("labels must set %s=%s and %s: %w",
			bottle.LabelManagedBy, bottle.ManagedByValue, bottle.LabelInstance, cerrdefs.ErrInvalidArgument)
	}
	return nil
}
