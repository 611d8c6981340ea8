package dockerguest

import (
	"errors"
	"fmt"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// wrap prefixes err with the operation and resource, and marks a daemon that
// cannot be reached as unavailable so callers never take it for "nothing
// exists".
func wrap(op string, err error) error {
	if client.IsErrConnectionFailed(err) && !cerrdefs.IsUnavailable(err) {
		return fmt.Errorf("dockerguest: %s: %w (%w)", op, err, cerrdefs.ErrUnavailable)
	}
	return fmt.Errorf("dockerguest: %s: %w", op, err)
}

// managed reports whether labels mark a guest this driver made. Both the
// managed-by and the instance label are needed: Docker copies image labels
// onto every container made from the image, so managed-by alone could come
// from an image.
func managed(labels map[string]string) bool {
	return labels[bottle.LabelManagedBy] == bottle.ManagedByValue &&
		labels[bottle.LabelInstance] != "" &&
		labels[bottle.LabelRole] == string(bottle.RoleGuest) &&
		labels[LabelDriver] == Kind
}

// nameTaken returns the conflict error for a container called name that
// exists already, saying whose it is.
func nameTaken(op string, labels map[string]string, instance string) error {
	switch {
	case labels[bottle.LabelManagedBy] != bottle.ManagedByValue || labels[bottle.LabelInstance] == "":
		return fmt.Errorf("dockerguest: %s: a container of that name exists and is not managed by bottle-reconcile; remove or rename it: %w",
			op, cerrdefs.ErrConflict)
	case labels[bottle.LabelInstance] != instance:
		return fmt.Errorf("dockerguest: %s: a container of that name exists and belongs to bottle-reconcile instance %q; stop that instance or use another bottle name: %w",
			op, labels[bottle.LabelInstance], cerrdefs.ErrConflict)
	}
	return fmt.Errorf("dockerguest: %s: the guest already exists; delete it first: %w", op, cerrdefs.ErrConflict)
}

var errNoAddr = errors.New("guest has no address on its bottle network")
