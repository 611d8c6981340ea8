package dockerguest

import (
	"errors"

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

var errNoAddr = errors.New("guest has no address on its bottle network")
