package dockerx

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// LabelNetwork is set on containers: the bottle network they are attached
// to, whose address is theirs.
const LabelNetwork = "dev.bottle-reconcile.network"

// ContainerResource turns a listed container into a Resource of the given
// kind and role: identity from its labels, its run state and health, and its
// address on the network its LabelNetwork label names. The docker guest
// driver shares it, so both read containers the same way.
func ContainerResource(c container.Summary, kind string, role bottle.Role) bottle.Resource {
	var name string
	if len(c.Names) > 0 {
		name = strings.TrimPrefix(c.Names[0], "/")
	}
	r := bottle.Labelled(kind, role, name, c.Labels)
	r.ID, r.Health = c.ID, HealthFromStatus(c.Status)
	r.State, r.Detail = StateOf(c)
	if c.NetworkSettings != nil {
		if ep := c.NetworkSettings.Networks[c.Labels[LabelNetwork]]; ep != nil {
			r.Addr = endpointAddr(ep)
		}
	}
	return r
}

// endpointAddr is the endpoint's IPv4 address; a stopped container has only
// the one it was pinned to.
func endpointAddr(ep *network.EndpointSettings) netip.Addr {
	if a, err := netip.ParseAddr(ep.IPAddress); err == nil {
		return a
	}
	if ep.IPAMConfig != nil {
		if a, err := netip.ParseAddr(ep.IPAMConfig.IPv4Address); err == nil {
			return a
		}
	}
	return netip.Addr{}
}

// WithLabels returns w's labels plus the driver's own, given as key, value
// pairs. w is not changed.
func WithLabels(w map[string]string, extra ...string) map[string]string {
	m := make(map[string]string, len(w)+len(extra)/2)
	for k, v := range w {
		m[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// ContainerInspector is the one Docker call ContainerNamed needs.
type ContainerInspector interface {
	ContainerInspect(ctx context.Context, container string) (container.InspectResponse, error)
}

// ContainerNamed returns the labels of the container called exactly name,
// and whether there is one. Inspect also matches ID prefixes, which must not
// count as a name taken.
func ContainerNamed(ctx context.Context, api ContainerInspector, name string) (map[string]string, bool, error) {
	c, err := api.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if strings.TrimPrefix(c.Name, "/") != name {
		return nil, false, nil
	}
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	return labels, true, nil
}

// ContainerNameTaken explains Docker's conflict on creating the container
// called name, a what (bundle, guest), for driver's op: whose the container
// of that name is, or nil when there is none (any more).
func ContainerNameTaken(ctx context.Context, api ContainerInspector, driver, op, what, name, instance string) error {
	labels, found, err := ContainerNamed(ctx, api, name)
	if err != nil {
		return Wrap(driver, op, err)
	}
	if !found {
		return nil
	}
	if err := NameTaken(driver, op, "container", labels, instance); err != nil {
		return err
	}
	return fmt.Errorf("%s: %s: the %s already exists; delete it first: %w", driver, op, what, cerrdefs.ErrConflict)
}

// ContainerLister is the one Docker call ManagedContainers needs.
type ContainerLister interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// ManagedContainers lists every container bottle-reconcile made, of every
// role and instance, with one label-filtered call per pass: the bundle and
// docker-guest drivers observe through it, and bottle.Shared makes
// their two observations one call. Under bottle.WithScope the call lists
// that bottle's containers alone. Callers pick their role by label and
// must not change what it returns.
func ManagedContainers(ctx context.Context, api ContainerLister) ([]container.Summary, error) {
	f := ScopedFilter(ctx)
	return bottle.Shared(ctx, "docker/containers/managed/"+bottle.ScopeOf(ctx), func(ctx context.Context) ([]container.Summary, error) {
		return api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	})
}

// ScopedFilter is the managed-by label filter plus more, narrowed to the
// bottle of a scoped observation (bottle.WithScope): Docker ANDs label
// filters.
func ScopedFilter(ctx context.Context, more ...filters.KeyValuePair) filters.Args {
	f := filters.NewArgs(append(more, filters.Arg("label", bottle.LabelManagedBy+"="+bottle.ManagedByValue))...)
	if b := bottle.ScopeOf(ctx); b != "" {
		f.Add("label", bottle.LabelBottle+"="+b)
	}
	return f
}

// ContainerRemover is what RemoveContainer needs.
type ContainerRemover interface {
	ContainerRemove(ctx context.Context, container string, options container.RemoveOptions) error
	ContainerWait(ctx context.Context, container string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
}

// RemoveContainer force-removes the container id. One that is gone is
// success, and a removal Docker is already doing (one a killed reconciler
// asked for) is waited for, not reported as a failure.
func RemoveContainer(ctx context.Context, api ContainerRemover, id string) error {
	err := api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	switch {
	case err == nil || cerrdefs.IsNotFound(err):
		return nil
	case !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "is already in progress"):
		return err
	}
	done, errc := api.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-done:
		return nil
	case werr := <-errc:
		if cerrdefs.IsNotFound(werr) {
			return nil // gone before the wait began
		}
		return fmt.Errorf("wait for the removal already in progress: %w", werr)
	}
}
