package dockerx

import (
	"context"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
)

// NetworkRemover is what RemoveNetwork needs.
type NetworkRemover interface {
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	NetworkRemove(ctx context.Context, networkID string) error
}

// RemoveNetwork removes, for driver's op, a managed network of the given
// instance ("" for any): a bottle network (the network driver) or an
// instance's egress network (the sidecar driver). With ignoreInUse, a
// network that still has endpoints is left alone without error.
func RemoveNetwork(ctx context.Context, api NetworkRemover, driver, op, id, instance string, ignoreInUse bool) error {
	n, err := api.NetworkInspect(ctx, id, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return Wrap(driver, op, err)
	}
	if !Managed(n.Labels) {
		return fmt.Errorf("%s: %s: %w: %w", driver, op, ErrNotOurs, cerrdefs.ErrConflict)
	}
	if err := OtherInstance(driver, op, "network", n.Labels, instance); err != nil {
		return err
	}
	if len(n.Containers) > 0 {
		if ignoreInUse {
			return nil
		}
		var names []string
		for _, c := range n.Containers {
			names = append(names, fmt.Sprintf("%q", c.Name))
		}
		sort.Strings(names)
		return fmt.Errorf("%s: %s: still attached: %s; remove or disconnect them first: %w",
			driver, op, strings.Join(names, ", "), cerrdefs.ErrConflict)
	}
	err = api.NetworkRemove(ctx, n.ID)
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case ignoreInUse && (cerrdefs.IsConflict(err) || cerrdefs.IsPermissionDenied(err)):
		// "has active endpoints": something attached since the inspect.
		return nil
	}
	return Wrap(driver, op, err)
}
