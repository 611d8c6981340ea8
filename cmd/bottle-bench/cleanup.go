package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockerguest"
)

// leftovers lists this run's containers and networks: by name (every name
// holds the run's tag), by the bench's run label, or by the instance label
// of its bottle-reconcile runs.
func (w *world) leftovers(ctx context.Context) (containers, networks []string, err error) {
	sels := []filters.Args{
		filters.NewArgs(filters.Arg("name", w.tag())),
		filters.NewArgs(filters.Arg("label", labelRun+"="+w.id)),
		filters.NewArgs(filters.Arg("label", bottle.LabelInstance+"="+w.instance())),
	}
	seenC, seenN := map[string]bool{}, map[string]bool{}
	for _, sel := range sels {
		cs, err := w.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: sel})
		if err != nil {
			return nil, nil, fmt.Errorf("list leftover containers: %w", err)
		}
		for _, c := range cs {
			if !seenC[c.ID] {
				seenC[c.ID] = true
				containers = append(containers, strings.TrimPrefix(firstName(c.Names), "/"))
			}
		}
		ns, err := w.docker.NetworkList(ctx, network.ListOptions{Filters: sel})
		if err != nil {
			return nil, nil, fmt.Errorf("list leftover networks: %w", err)
		}
		for _, n := range ns {
			if !seenN[n.ID] {
				seenN[n.ID] = true
				networks = append(networks, n.Name)
			}
		}
	}
	return containers, networks, nil
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// sweep force-removes this run's containers, then its networks, and says
// what it removed.
func (w *world) sweep(ctx context.Context) ([]string, error) {
	cs, ns, err := w.leftovers(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, c := range cs {
		err := w.docker.ContainerRemove(ctx, c, container.RemoveOptions{Force: true})
		switch {
		case err == nil:
			removed = append(removed, "container "+c)
		case !cerrdefs.IsNotFound(err):
			errs = append(errs, fmt.Errorf("remove container %q: %w", c, err))
		}
	}
	for _, n := range ns {
		err := w.docker.NetworkRemove(ctx, n)
		switch {
		case err == nil:
			removed = append(removed, "network "+n)
		case !cerrdefs.IsNotFound(err):
			errs = append(errs, fmt.Errorf("remove network %q: %w", n, err))
		}
	}
	return removed, errors.Join(errs...)
}

// cleanup removes everything the run with w.id made, whatever state it was
// left in: the watch child, the instance's bottles (through bottle-reconcile
// down, which also removes their firewall rules), any container or network
// still carrying the run's tag or labels, stray firewall rules, and the work
// directory. It is safe to run twice. It reports what it had to remove
// beyond bottle-reconcile down: after a clean run, nothing.
func (w *world) cleanup(ctx context.Context) ([]string, error) {
	var errs []error
	stopWatchChild(ctx, w)
	if _, err := os.Stat(w.bin); err == nil {
		r := w.rc("cleanup")
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			errs = append(errs, err)
		} else if err := r.down(ctx, nil, "--force", "--allow-mass-delete", "--lock-timeout", "60s"); err != nil {
			errs = append(errs, err)
		}
	}
	removed, err := w.sweep(ctx)
	errs = append(errs, err)
	rules, err := removeRules(ctx, w.instance())
	errs = append(errs, err)
	removed = append(removed, rules...)
	if err := os.RemoveAll(w.work); err != nil {
		errs = append(errs, fmt.Errorf("remove work directory: %w", err))
	}
	return removed, errors.Join(errs...)
}

// stopWatchChild ends a watch child a dead benchmark left running, by the
// pid it recorded, and only if that pid still runs bottle-reconcile for
// this run's instance: SIGTERM, then SIGKILL after its shutdown timeout
// (30 s) or when ctx ends.
func stopWatchChild(ctx context.Context, w *world) {
	b, err := os.ReadFile(w.pidFile())
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), w.instance()) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		_ = sleep(ctx, 100*time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// removeRules deletes host firewall rules bottle-reconcile left for this
// instance (a guest removed behind its back keeps them), through the
// docker-guest driver, which owns their format. A host without iptables has
// none to remove.
func removeRules(ctx context.Context, instance string) ([]string, error) {
	rules, err := dockerguest.RemoveInstanceRules(ctx, instance)
	if errors.Is(err, exec.ErrNotFound) {
		return nil, nil
	}
	removed := make([]string, 0, len(rules))
	for _, r := range rules {
		removed = append(removed, "firewall rule "+r)
	}
	return removed, err
}
