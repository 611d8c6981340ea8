package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Kind is the bundle driver's kind; it keeps the name it had in
// drivers/dockernet, so bundles made before the move are still its own.
const Kind = "dockernet-bundle"

// Bundle container limits.
const (
	bundlePidsLimit = 128
	bundleMemory    = 128 << 20
)

// Driver manages bundle containers: one hardened sidecar per bottle at
// a pinned address on the bottle network, also attached to the instance's
// egress network.
type Driver struct {
	base
	imageSem chan struct{} // serialises image builds
	image    string        // the bundle image tag last built or found; guarded by imageSem

	egressMu sync.Mutex
	egress   map[string]string // egress network ID by instance
}

// New returns the bundle driver. api is usually a
// *client.Client made with client.FromEnv and API version negotiation.
func New(api dockerAPI, opts Options, log logr.Logger) (*Driver, error) {
	b, err := newBase(api, opts, log)
	if err != nil {
		return nil, err
	}
	return &Driver{base: b, imageSem: make(chan struct{}, 1), egress: map[string]string{}}, nil
}

// Kind implements reconciler.Driver.
func (d *Driver) Kind() string { return Kind }

// Role implements reconciler.Driver.
func (d *Driver) Role() bottle.Role { return bottle.RoleBundle }

// Observe implements reconciler.Driver with one ContainerList, shared in
// a pass with the docker-guest driver (dockerx.ManagedContainers).
func (d *Driver) Observe(ctx context.Context) ([]bottle.Resource, error) {
	cs, err := dockerx.ManagedContainers(ctx, d.api)
	if err != nil {
		return nil, wrap("list bundle containers", err)
	}
	out := make([]bottle.Resource, 0, len(cs))
	for _, c := range cs {
		if c.Labels[bottle.LabelRole] == string(bottle.RoleBundle) {
			out = append(out, bundleResource(c))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func bundleResource(c container.Summary) bottle.Resource {
	return dockerx.ContainerResource(c, Kind, bottle.RoleBundle)
}

// Create implements reconciler.Driver. It is for a missing bundle only: a
// container of that name, ours or not, is a conflict (the reconciler deletes
// first). It returns once the bundle says on its log stream that every
// daemon is bound; a bundle that does not get there is removed again and the
// error names it.
func (d *Driver) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	op := fmt.Sprintf("create bundle %q", w.Name)
	if err := checkWantLabels(op, w); err != nil {
		return bottle.Resource{}, err
	}
	if w.Network == "" || !w.BundleAddr.Is4() || (w.Subnet.IsValid() && !w.Subnet.Contains(w.BundleAddr)) {
		return bottle.Resource{}, fmt.Errorf("dockernet: %s: need a network and an IPv4 bundle address in its subnet (network %q, address %s, subnet %s): %w",
			op, w.Network, w.BundleAddr, w.Subnet, cerrdefs.ErrInvalidArgument)
	}
	instance := w.Labels[bottle.LabelInstance]
	hosts, err := d.opts.HostAddrs()
	if err != nil {
		return bottle.Resource{}, fmt.Errorf("dockernet: %s: %w", op, err)
	}
	cfg, err := d.bundleConfig(w, hosts)
	if err != nil {
		return bottle.Resource{}, fmt.Errorf("dockernet: %s: %w", op, err)
	}
	image, err := d.ensureImage(ctx)
	if err != nil {
		return bottle.Resource{}, fmt.Errorf("%s: %w", op, err)
	}
	egress, err := d.ensureEgress(ctx, instance)
	if err != nil {
		return bottle.Resource{}, fmt.Errorf("%s: %w", op, err)
	}

	labels := dockerx.WithLabels(w.Labels, bottle.LabelRole, string(bottle.RoleBundle), dockerx.LabelNetwork, w.Network)
	// No lookup of the name first: Docker refuses a taken name with a
	// conflict, and only then is it worth a call to say whose it is.
	resp, err := d.api.ContainerCreate(ctx, containerConfig(image, cfg, labels), hostConfig(w.Network),
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			w.Network: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: w.BundleAddr.String()}},
		}}, nil, w.Name)
	if cerrdefs.IsConflict(err) {
		if err := dockerx.ContainerNameTaken(ctx, d.api, driverName, op, "bundle", w.Name, instance); err != nil {
			return bottle.Resource{}, err
		}
	}
	if err != nil {
		return bottle.Resource{}, wrap(op, err)
	}
	if err := d.startReady(ctx, op, resp.ID, instance, egress); err != nil {
		// Leave nothing half made behind; the next pass creates it afresh.
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rmErr := d.api.ContainerRemove(rmCtx, resp.ID, container.RemoveOptions{Force: true}); rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			err = errors.Join(err, wrap(fmt.Sprintf("remove failed bundle %q", w.Name), rmErr))
		}
		return bottle.Resource{}, err
	}
	d.log.V(1).Info("bundle created", "bundle", w.Name, "addr", w.BundleAddr.String())
	// What a list would say of it now, without the call: it is running
	// and ready, at the address it was pinned to.
	r := bottle.Labelled(Kind, bottle.RoleBundle, w.Name, labels)
	r.ID, r.State, r.Addr = resp.ID, bottle.StateRunning, w.BundleAddr
	return r, nil
}

// bundleConfig is what the bundle program reads from its environment;
// hosts are the host's addresses it must refuse.
func (d *Driver) bundleConfig(w bottle.Want, hosts []netip.Addr) (string, error) {
	allow := make([]string, 0, len(w.Bundle.Allow))
	for _, a := range w.Bundle.Allow {
		r, err := spec.ParseHostRule(a)
		if err != nil {
			return "", fmt.Errorf("egress rule %q: %w", a, err)
		}
		allow = append(allow, r.String())
	}
	return bundle.Config{
		Bottle:   w.Bottle,
		Daemons:  w.Bundle.Daemons,
		Allow:    allow,
		Listen:   w.BundleAddr,
		Refuse:   []netip.Prefix{d.opts.Pool},
		Upstream: d.opts.DNSUpstream,

		HostAddrs:        hosts,
		DNSQueryRate:     d.opts.DNSQueryRate,
		DNSQueryBurst:    d.opts.DNSQueryBurst,
		MaxWildcardBytes: d.opts.MaxWildcardBytes,
	}.Encode()
}

// HashFacts implements reconciler.HashFacter: the host's addresses a bundle
// refuses and the DNS limits set by flag, each only when there is one, so
// a host with no public address and default limits hashes as before. The
// host's addresses are read from the kernel once a pass, which costs one
// netlink dump and nothing at rest; a change of them (a new public address)
// replaces every bundle on the next pass, which freezes each guest for
// about a second, rather than keep a channel open into every bundle.
func (d *Driver) HashFacts(context.Context) (string, error) {
	hosts, err := d.opts.HostAddrs()
	if err != nil {
		return "", fmt.Errorf("dockernet: bundle facts: %w", err)
	}
	var parts []string
	if len(hosts) > 0 {
		s := make([]string, len(hosts))
		for i, a := range hosts {
			s[i] = a.String()
		}
		parts = append(parts, "hosts="+strings.Join(s, ","))
	}
	if o := d.opts; o.DNSQueryRate != 0 || o.DNSQueryBurst != 0 || o.MaxWildcardBytes != 0 {
		parts = append(parts, fmt.Sprintf("dns=%g/%d/%d", o.DNSQueryRate, o.DNSQueryBurst, o.MaxWildcardBytes))
	}
	return strings.Join(parts, ";"), nil
}

func containerConfig(image, cfg string, labels map[string]string) *container.Config {
	return &container.Config{
		Image:      image,
		User:       "65534:65534",
		Entrypoint: []string{binaryPath},
		Cmd:        []string{"bundle", "run"},
		Env:        []string{bundle.ConfigEnv + "=" + cfg},
		Labels:     labels,
		// No Docker health check: one is a runc exec and a new process per
		// bundle per interval, which kept two cores busy at 20 bundles.
		// Readiness is the ready line on the log stream, liveness the
		// bundle's own exit (any daemon failing stops it, and its watchdog
		// stops it when a daemon hangs), which is a Docker event the
		// reconciler heals at once. "none" also overrides a HEALTHCHECK
		// anyone adds to the image.
		Healthcheck: &container.HealthConfig{Test: []string{"NONE"}},
	}
}

// hostConfig is the hardened runtime setup of a bundle. Nothing is mounted
// and no port is published: the bundle is reached on its bottle address.
func hostConfig(net string) *container.HostConfig {
	pids := int64(bundlePidsLimit)
	sysctls := dockerx.NoIPv6()
	// Lets the unprivileged user bind DNS on port 53 with no capability.
	sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
	return &container.HostConfig{
		NetworkMode:    container.NetworkMode(net),
		Privileged:     false,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		Sysctls:        sysctls,
		// "no": the reconciler heals a dead bundle. A restart policy would
		// bring it back behind the reconciler's back and hide its deaths.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig:     dockerx.BoundedLogs(),
		Resources: container.Resources{
			PidsLimit:  &pids,
			Memory:     bundleMemory,
			MemorySwap: bundleMemory, // no swap on top
		},
	}
}

// startReady connects the bundle to the egress network, starts it and
// waits for its ready line.
func (d *Driver) startReady(ctx context.Context, op, id, instance, egress string) error {
	// API 1.41 takes one network at create; the second must come before
	// start so the bundle never runs without its way out.
	err := d.api.NetworkConnect(ctx, egress, id, &network.EndpointSettings{})
	if cerrdefs.IsNotFound(err) {
		// The remembered egress network was removed meanwhile: make it again.
		d.forgetEgress(instance)
		if egress, err = d.ensureEgress(ctx, instance); err == nil {
			err = d.api.NetworkConnect(ctx, egress, id, &network.EndpointSettings{})
		}
	}
	if err != nil {
		return wrap(op+": connect egress network", err)
	}
	if err := d.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return wrap(op+": start", err)
	}
	return d.waitReady(ctx, op, id)
}

// Delete implements reconciler.Driver: a forced remove of a bundle container
// that carries the managed-by label and, when r names one, r's instance. A
// missing one is success.
func (d *Driver) Delete(ctx context.Context, r bottle.Resource) error {
	op := fmt.Sprintf("remove bundle %q", r.Name)
	c, err := d.api.ContainerInspect(ctx, dockerx.Ref(r))
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(op, err)
	}
	if c.Config == nil || !dockerx.Managed(c.Config.Labels) || c.Config.Labels[bottle.LabelRole] != string(bottle.RoleBundle) {
		return fmt.Errorf("dockernet: %s: %w: %w", op, dockerx.ErrNotOurs, cerrdefs.ErrConflict)
	}
	if err := otherInstance(op, "container", c.Config.Labels, r.Instance); err != nil {
		return err
	}
	if err := dockerx.RemoveContainer(ctx, d.api, c.ID); err != nil {
		return wrap(op, err)
	}
	return nil
}
