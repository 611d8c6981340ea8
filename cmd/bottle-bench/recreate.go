package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The floor of a heal: a container removed and made again from what Docker
// said of it, back to back, with the fewest calls there can be (remove,
// create, connect, start) and no time spent noticing the removal or waiting
// for anything after the start. A reconciler's heal of a removed bundle is
// measured against it.

// recreateCmd is the subcommand that does it to a named container, for
// scripts/scale, where the floor's own bottles are not up.
const recreateCmd = "recreate"

// healOpPrefix names the floor's heal steps among its operations.
const healOpPrefix = "heal: "

// healWhole names a whole heal, from the removal to the start's return.
const healWhole = "rm -f to started"

// healOp is the name of a whole heal among the floor's operations.
const healOp = healOpPrefix + healWhole

// recreateAPI is the part of the Docker client a recreate uses.
type recreateAPI interface {
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error
	ContainerCreate(ctx context.Context, cfg *container.Config, host *container.HostConfig,
		net *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error)
	NetworkConnect(ctx context.Context, net, id string, cfg *network.EndpointSettings) error
	ContainerStart(ctx context.Context, id string, opts container.StartOptions) error
}

// recreate removes container name by force and makes it again with the same
// configuration, networks and pinned addresses. Each step is timed under
// prefix in ops, and the whole under prefix+healWhole.
func recreate(ctx context.Context, api recreateAPI, name string, ops *opTimer, prefix string) error {
	c, err := api.ContainerInspect(ctx, name)
	if err != nil {
		return fmt.Errorf("recreate %q: inspect: %w", name, err)
	}
	if c.Config == nil || c.HostConfig == nil || c.NetworkSettings == nil {
		return fmt.Errorf("recreate %q: Docker's inspect lacks its configuration", name)
	}
	primary := string(c.HostConfig.NetworkMode)
	var others []string
	for n := range c.NetworkSettings.Networks {
		if n != primary {
			others = append(others, n)
		}
	}
	sort.Strings(others)
	endpoint := func(n string) *network.EndpointSettings {
		es := &network.EndpointSettings{}
		if cur := c.NetworkSettings.Networks[n]; cur != nil && cur.IPAMConfig != nil {
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: cur.IPAMConfig.IPv4Address}
		}
		return es
	}
	var first *network.NetworkingConfig
	if _, ok := c.NetworkSettings.Networks[primary]; ok {
		first = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{primary: endpoint(primary)}}
	}

	var id string
	err = ops.time(prefix+healWhole, func() error {
		if err := ops.time(prefix+"rm -f", func() error {
			return api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}); err != nil {
			return fmt.Errorf("remove: %w", err)
		}
		if err := ops.time(prefix+"create", func() error {
			resp, err := api.ContainerCreate(ctx, c.Config, c.HostConfig, first, nil, name)
			id = resp.ID
			return err
		}); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		for _, n := range others {
			if err := ops.time(prefix+"connect", func() error {
				return api.NetworkConnect(ctx, n, id, endpoint(n))
			}); err != nil {
				return fmt.Errorf("connect to %q: %w", n, err)
			}
		}
		if err := ops.time(prefix+"start", func() error {
			return api.ContainerStart(ctx, id, container.StartOptions{})
		}); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recreate %q: %w", name, err)
	}
	return nil
}

// recreateMain is the subcommand: recreate CONTAINER... Each is removed and
// made again in turn, and the steps' times are printed.
func recreateMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "usage: bottle-bench %s CONTAINER...\n", recreateCmd)
		return 2
	}
	return withDocker(stderr, func(cli *client.Client) error {
		for _, name := range args {
			ops := newOpTimer()
			if err := recreate(ctx, cli, name, ops, ""); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "floor heal of %s:", name)
			for _, o := range ops.stats() {
				fmt.Fprintf(stdout, " %s %s;", o.Op, fmtDur(o.Mean))
			}
			fmt.Fprintln(stdout)
		}
		return nil
	})
}
