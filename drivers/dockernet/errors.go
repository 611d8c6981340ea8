package dockernet

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// wrap prefixes err with the operation and resource, and marks a daemon that
// cannot be reached as unavailable so callers never take it for "nothing
// exists".
func wrap(op string, err error) error {
	if client.IsErrConnectionFailed(err) && !cerrdefs.IsUnavailable(err) {
		return fmt.Errorf("dockernet: %s: %w (%w)", op, err, cerrdefs.ErrUnavailable)
	}
	return fmt.Errorf("dockernet: %s: %w", op, err)
}

// isPoolOverlap reports whether Docker refused a network because its subnet
// overlaps another network's. Docker gives it no class of its own, so this
// reads the text; it is fragile and the only place that does. Docker 20.10
// through 28 say: "Pool overlaps with other one on this address space".
func isPoolOverlap(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Pool overlaps with other one on this address space")
}

// ownership is who a runtime object belongs to, judged by labels only.
type ownership int

const (
	ownedByUs       ownership = iota // managed by bottle-reconcile, this instance
	ownedByOther                     // managed by bottle-reconcile, another instance
	ownedByNoneOfUs                  // not managed by bottle-reconcile
)

// owner decides by labels who owns a resource. Both the managed-by and the
// instance label are needed: the bundle image carries managed-by, and Docker
// copies image labels onto every container made from it, so managed-by alone
// would claim anyone's container run from our image.
func owner(labels map[string]string, instance string) ownership {
	switch {
	case !managed(labels):
		return ownedByNoneOfUs
	case labels[bottle.LabelInstance] != instance:
		return ownedByOther
	default:
		return ownedByUs
	}
}

// managed reports whether labels mark something bottle-reconcile made.
func managed(labels map[string]string) bool {
	return labels[bottle.LabelManagedBy] == bottle.ManagedByValue && labels[bottle.LabelInstance] != ""
}

// nameTaken returns the conflict error for a name already used by something
// that is not ours to touch, or nil if it is ours.
func nameTaken(op, what string, labels map[string]string, instance string) error {
	switch owner(labels, instance) {
	case ownedByNoneOfUs:
		return fmt.Errorf("dockernet: %s: a %s of that name exists and is not managed by bottle-reconcile; remove or rename it: %w",
			op, what, cerrdefs.ErrConflict)
	case ownedByOther:
		return fmt.Errorf("dockernet: %s: a %s of that name exists and belongs to bottle-reconcile instance %q; stop that instance or use another bottle name: %w",
			op, what, labels[bottle.LabelInstance], cerrdefs.ErrConflict)
	}
	return nil
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
