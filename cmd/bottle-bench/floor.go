package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// floorConcurrency is how many bottles the floor works on at once:
// bottle-reconcile's default --concurrency.
const floorConcurrency = 4

// floor does what one bottle needs with the fewest Docker API calls there
// can be: the lower bound the other contenders are measured against. It
// waits for nothing (no health, no firewall rules, no route narrowing).
type floor struct {
	w       *world
	bottles []benchBottle
	egress  string
	ops     *opTimer
	// procObserve is observe timed as a process of its own (floorproc.go).
	procObserve []time.Duration
}

func newFloor(w *world) *floor {
	return &floor{w: w, bottles: layout(w.tag()+"-f", 0, w.n), egress: w.tag() + "-f-egress", ops: newOpTimer()}
}

func (f *floor) name() string { return "floor" }

func (f *floor) labels() map[string]string {
	return map[string]string{labelRun: f.w.id, labelContender: f.name()}
}

func (f *floor) up(ctx context.Context) error {
	no := false
	err := f.ops.time("egress network create", func() error {
		_, err := f.w.docker.NetworkCreate(ctx, f.egress, network.CreateOptions{
			Driver: "bridge", EnableIPv6: &no, Labels: f.labels(),
			Options: map[string]string{"com.docker.network.bridge.enable_icc": "false"},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("floor: create egress network %q: %w", f.egress, err)
	}
	return parallel(ctx, f.bottles, floorConcurrency, f.upOne)
}

func (f *floor) upOne(ctx context.Context, b benchBottle) error {
	api, no := f.w.docker, false
	err := f.ops.time("network create", func() error {
		_, err := api.NetworkCreate(ctx, b.Network(), network.CreateOptions{
			Driver: "bridge", Internal: true, EnableIPv6: &no, Labels: f.labels(),
			Options: map[string]string{"com.docker.network.bridge.inhibit_ipv4": "true"},
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{
				Subnet: b.Subnet.String(), Gateway: b.Gateway().String(),
			}}},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("floor: create network %q: %w", b.Network(), err)
	}

	cfg, err := bundleConfig(b, benchPool)
	if err != nil {
		return err
	}
	bpids := int64(bundlePids)
	var id string
	err = f.ops.time("bundle create", func() error {
		resp, err := api.ContainerCreate(ctx,
			&container.Config{
				Image: f.w.bundleImage, User: "65534:65534", Labels: f.labels(),
				Entrypoint: []string{"/bottle-reconcile"}, Cmd: []string{"bundle", "run"},
				Env: []string{"BOTTLE_BUNDLE_CONFIG=" + cfg},
			},
			&container.HostConfig{
				NetworkMode: container.NetworkMode(b.Network()),
				CapDrop:     []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"},
				ReadonlyRootfs: true, Sysctls: bundleSysctls(),
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
				Resources:     container.Resources{PidsLimit: &bpids, Memory: bundleMemory, MemorySwap: bundleMemory},
			},
			pinned(b.Network(), b.BundleAddr().String()), nil, b.BundleName())
		id = resp.ID
		return err
	})
	if err != nil {
		return fmt.Errorf("floor: create container %q: %w", b.BundleName(), err)
	}
	if err := f.ops.time("egress connect", func() error {
		return api.NetworkConnect(ctx, f.egress, id, &network.EndpointSettings{})
	}); err != nil {
		return fmt.Errorf("floor: connect %q to %q: %w", b.BundleName(), f.egress, err)
	}
	if err := f.ops.time("bundle start", func() error {
		return api.ContainerStart(ctx, id, container.StartOptions{})
	}); err != nil {
		return fmt.Errorf("floor: start %q: %w", b.BundleName(), err)
	}

	gpids := int64(guestPids)
	err = f.ops.time("guest create", func() error {
		resp, err := api.ContainerCreate(ctx,
			&container.Config{Image: agentImage, Env: guestEnv(b), Labels: f.labels()},
			&container.HostConfig{
				NetworkMode: container.NetworkMode(b.Network()),
				CapDrop:     []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"},
				Sysctls: guestSysctls(), DNS: []string{b.BundleAddr().String()},
				IpcMode:       container.IPCModePrivate,
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
				Resources: container.Resources{
					NanoCPUs: 1e9, Memory: guestMemory, MemorySwap: guestMemory, PidsLimit: &gpids,
				},
			},
			pinned(b.Network(), b.GuestAddr().String()), nil, b.GuestName())
		id = resp.ID
		return err
	})
	if err != nil {
		return fmt.Errorf("floor: create container %q: %w", b.GuestName(), err)
	}
	if err := f.ops.time("guest start", func() error {
		return api.ContainerStart(ctx, id, container.StartOptions{})
	}); err != nil {
		return fmt.Errorf("floor: start %q: %w", b.GuestName(), err)
	}
	return nil
}

// pinned attaches a container to net at addr.
func pinned(net, addr string) *network.NetworkingConfig {
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		net: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: addr}},
	}}
}

// observe is what a reconciler must do at least on every pass: one
// label-filtered list per resource kind.
func (f *floor) observe(ctx context.Context) error {
	// The egress network is one more than the bottles'.
	return observeFloor(ctx, f.w.docker, f.w.id, len(f.bottles)+1, 2*len(f.bottles))
}

// floorLister is the part of the Docker client the floor's observe uses.
type floorLister interface {
	NetworkList(ctx context.Context, opts network.ListOptions) ([]network.Summary, error)
	ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error)
}

// observeFloor lists run's floor networks and containers and fails unless
// there are exactly wantN and wantC of them.
func observeFloor(ctx context.Context, api floorLister, run string, wantN, wantC int) error {
	sel := filters.NewArgs(filters.Arg("label", labelRun+"="+run))
	nets, err := api.NetworkList(ctx, network.ListOptions{Filters: sel})
	if err != nil {
		return fmt.Errorf("floor: list networks: %w", err)
	}
	cs, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: sel})
	if err != nil {
		return fmt.Errorf("floor: list containers: %w", err)
	}
	if len(nets) != wantN || len(cs) != wantC {
		return fmt.Errorf("floor: observed %d networks and %d containers, want %d and %d", len(nets), len(cs), wantN, wantC)
	}
	return nil
}

func (f *floor) down(ctx context.Context) error {
	err := parallel(ctx, f.bottles, floorConcurrency, func(ctx context.Context, b benchBottle) error {
		for _, c := range []struct{ role, name string }{{"guest", b.GuestName()}, {"bundle", b.BundleName()}} {
			if err := f.ops.time(c.role+" remove", func() error {
				return f.w.docker.ContainerRemove(ctx, c.name, container.RemoveOptions{Force: true})
			}); err != nil {
				return fmt.Errorf("floor: remove container %q: %w", c.name, err)
			}
		}
		if err := f.ops.time("network remove", func() error {
			return f.w.docker.NetworkRemove(ctx, b.Network())
		}); err != nil {
			return fmt.Errorf("floor: remove network %q: %w", b.Network(), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := f.ops.time("egress network remove", func() error {
		return f.w.docker.NetworkRemove(ctx, f.egress)
	}); err != nil {
		return fmt.Errorf("floor: remove egress network %q: %w", f.egress, err)
	}
	return nil
}

// parallel runs f on every bottle, at most n at once, and returns every
// error. After the first error no new bottle starts.
func parallel(ctx context.Context, bs []benchBottle, n int, f func(context.Context, benchBottle) error) error {
	sem := make(chan struct{}, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, b := range bs {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(ctx, b); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}
