package dockernet

import (
	"fmt"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
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

// checkWantLabels is dockerx.CheckWantLabels for this driver.
func checkWantLabels(op string, w bottle.Want) error {
	if err := dockerx.CheckWantLabels(w); err != nil {
		return fmt.Errorf("%s: %s: %w", "dockernet", op, err)
	}
	return nil
}
