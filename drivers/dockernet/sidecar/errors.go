package sidecar

import (
	"fmt"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
)

// Errors keep the driver family's name, "dockernet", as the kind does
// ("dockernet-bundle"): the messages read as they did before the driver had
// a package of its own.
const driverName = "dockernet"

// wrap is dockerx.Wrap for this driver.
func wrap(op string, err error) error { return dockerx.Wrap(driverName, op, err) }

// nameTaken is dockerx.NameTaken for this driver.
func nameTaken(op, what string, labels map[string]string, instance string) error {
	return dockerx.NameTaken(driverName, op, what, labels, instance)
}

// otherInstance is dockerx.OtherInstance for this driver.
func otherInstance(op, what string, labels map[string]string, instance string) error {
	return dockerx.OtherInstance(driverName, op, what, labels, instance)
}

// checkWantLabels is dockerx.CheckWantLabels for this driver.
func checkWantLabels(op string, w bottle.Want) error {
	if err := dockerx.CheckWantLabels(w); err != nil {
		return fmt.Errorf("%s: %s: %w", driverName, op, err)
	}
	return nil
}
