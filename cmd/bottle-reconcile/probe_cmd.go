package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet"
	"github.com/bottle-reconcile/bottle-reconcile/probe"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// cmdProbe runs the escape probes inside a live bottle's guest: exit 0 when
// every probe holds, 1 when any fails or the probe could not run.
func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("probe", stderr, "probe NAME [--dir DIR] [--instance I] [-o text|json]")
	c.register(fs)
	dir := fs.String("dir", "specs", "the spec directory holding the bottle's spec")
	output := fs.String("o", "text", "output: text or json")
	bin := fs.String("probe-binary", "", "bottle-reconcile binary to run inside the guest, static or dynamically linked (default: this binary)")
	timeout := fs.Duration("timeout", 3*time.Minute, "limit for the probes inside the guest")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 || (*output != "text" && *output != "json") {
		fs.Usage()
		return exitUsage
	}
	name := pos[0]
	if err := c.resolve(*dir); err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitUsage
	}
	res, err := spec.LoadDir(c.dir, spec.Options{Pool: c.pool, AllowSubnetOutsidePool: c.outsidePool, StateDir: c.stateDir})
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitUsage
	}
	var b *spec.Bottle
	for _, x := range res.Bottles {
		if x.Metadata.Name == name {
			b = x
		}
	}
	if b == nil {
		fmt.Fprintf(stderr, "bottle-reconcile: no valid spec for bottle %q in %s\n", name, c.dir)
		return exitUsage
	}
	if *bin == "" {
		if *bin, err = os.Executable(); err != nil {
			fmt.Fprintf(stderr, "bottle-reconcile: find own executable: %v\n", err)
			return exitFail
		}
	}
	e, err := c.build(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitFail
	}
	defer e.Close()
	o, err := c.probeDrivers(ctx, e, b.Spec.Guest)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: probe %s: %v\n", name, err)
		return exitFail
	}
	o.Instance, o.Bottle, o.Spec, o.Binary, o.Timeout = c.instance, name, b.Spec, *bin, *timeout
	rep, err := probe.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: probe %s: %v\n", name, err)
		return exitFail
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		probe.Render(stdout, rep)
	}
	if !rep.Passed {
		return exitFail
	}
	return exitOK
}

// probeDrivers are the drivers the probe observes the bottle with, as a
// pass does, and the guest driver it runs its helper through.
func (c *common) probeDrivers(ctx context.Context, e *env, kind string) (probe.Options, error) {
	netd, err := dockernet.NewNetworkDriver(e.docker, c.networkOptions(), e.log)
	if err != nil {
		return probe.Options{}, err
	}
	d, ok := e.guests[kind]
	if !ok {
		return probe.Options{}, fmt.Errorf("no driver for guest kind %q", kind)
	}
	g, ok := d.(probe.GuestDriver)
	if !ok {
		// A runtime that is not installed: its Observe says why.
		_, err := d.Observe(ctx)
		return probe.Options{}, fmt.Errorf("find its guest: %w", err)
	}
	return probe.Options{Network: netd, Bundle: e.bundle, Guest: g}, nil
}
