package dockerguest

import (
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
)

// wrap is dockerx.Wrap for this driver.
func wrap(op string, err error) error { return dockerx.Wrap("dockerguest", op, err) }

// managed reports whether labels mark a guest this driver made. Both the
// managed-by and the instance label are needed: Docker copies image labels
// onto every container made from the image, so managed-by alone could come
// from an image.
func managed(labels map[string]string) bool {
	return dockerx.Managed(labels) &&
		labels[bottle.LabelRole] == string(bottle.RoleGuest) &&
		labels[LabelDriver] == Kind
}

// nameTaken returns the conflict error for a container called name that
// exists already, saying whose it is.
func nameTaken(op string, labels map[string]string, instance string) error {
	if err := dockerx.NameTaken("dockerguest", op, "container", labels, instance); err != nil {
		return err
	}
	return fmt.Errorf("dockerguest: %s: the guest already exists; delete it first: %w", op, cerrdefs.ErrConflict)
}

var errNoAddr = errors.New("guest has no address on its bottle network")
