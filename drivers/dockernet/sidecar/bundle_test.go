package sidecar

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// bottleUp creates a bottle's network and bundle.
func bottleUp(ctx context.Context, t *testing.T, nd *dockernet.NetworkDriver, bd *Driver, inst, bottleName string, s spec.Spec) (bottle.Resource, bottle.Resource, error) {
	t.Helper()
	n, err := nd.Create(ctx, networkWant(inst, bottleName))
	if err != nil {
		return n, bottle.Resource{}, err
	}
	b, err := bd.Create(ctx, bundleWant(inst, bottleName, n.Subnet, s))
	return n, b, err
}

func TestBundleCreateReadyHardened(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	opts := testOptions("10.215.5.0/24")
	// The reconciler's DNS limit flags and the host's addresses reach the
	// bundle's config.
	opts.DNSQueryRate, opts.DNSQueryBurst, opts.MaxWildcardBytes = 50, 500, 40
	hostIP := netip.MustParseAddr("203.0.113.9")
	opts.HostAddrs = func() ([]netip.Addr, error) { return []netip.Addr{hostIP}, nil }
	api := &countingAPI{dockerAPI: cli}
	nd, bd := newDrivers(t, api, opts)
	s := spec.Spec{Daemons: []string{}, Egress: spec.Egress{Allow: []string{"API.Example.com", "*.Foo.org:8443"}}}

	// Three at once: one image build, one egress network.
	type pair struct{ net, bun bottle.Resource }
	bottles := make([]pair, 3)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range bottles {
		wg.Go(func() {
			n, b, err := bottleUp(ctx, t, nd, bd, inst, fmt.Sprintf("%s-%d", inst, i), s)
			if err != nil {
				t.Error(err)
			}
			bottles[i] = pair{n, b}
		})
	}
	wg.Wait()
	t.Logf("3 bottles up in %s", time.Since(start))
	if t.Failed() {
		t.FailNow()
	}

	// With three bottles up, each Observe is still one list call, not one
	// per bottle.
	api.Snapshot()
	nets, err := nd.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if calls := api.Snapshot(); len(calls) != 1 || calls["NetworkList"] != 1 || len(mine(nets, inst)) != 3 {
		t.Errorf("network Observe() saw %d of ours with calls %v; want 3 with one NetworkList", len(mine(nets, inst)), calls)
	}
	got, err := bd.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if calls := api.Snapshot(); len(calls) != 1 || calls["ContainerList"] != 1 || len(mine(got, inst)) != 3 {
		t.Errorf("bundle Observe() saw %d of ours with calls %v; want 3 with one ContainerList", len(mine(got, inst)), calls)
	}
	// In a pass, the bundle driver's list is the one the docker-guest
	// driver reads too: one ContainerList for both.
	pass := bottle.WithShared(ctx)
	if _, err := bd.Observe(pass); err != nil {
		t.Fatal(err)
	}
	if cs, err := dockerx.ManagedContainers(pass, api); err != nil || len(cs) < 3 {
		t.Errorf("dockerx.ManagedContainers in the pass = %d containers, %v", len(cs), err)
	}
	if calls := api.Snapshot(); len(calls) != 1 || calls["ContainerList"] != 1 {
		t.Errorf("a pass's bundle Observe and container listing made calls %v; want one ContainerList", calls)
	}
	// A pass scoped to one bottle lists that bottle's network and
	// containers alone, with the same one call each.
	one := bottles[1].bun.Bottle
	scoped := bottle.WithScope(bottle.WithShared(ctx), one)
	snets, err := nd.Observe(scoped)
	if err != nil {
		t.Fatal(err)
	}
	sbuns, err := bd.Observe(scoped)
	if err != nil {
		t.Fatal(err)
	}
	if calls := api.Snapshot(); len(calls) != 2 || calls["NetworkList"] != 1 || calls["ContainerList"] != 1 {
		t.Errorf("scoped Observes made calls %v; want one NetworkList and one ContainerList", calls)
	}
	for what, rs := range map[string][]bottle.Resource{"network": snets, "bundle": sbuns} {
		if len(rs) != 1 || rs[0].Bottle != one || rs[0].Instance != inst {
			t.Errorf("%s Observe scoped to %s = %+v; want its one %s alone", what, one, rs, what)
		}
	}
	obs := mine(got, inst)
	for _, b := range bottles {
		want := bottle.Resource{
			Kind: Kind, Role: bottle.RoleBundle, Bottle: b.bun.Bottle, Instance: inst,
			Name: bottle.Names(b.bun.Bottle, bottle.RoleBundle), ID: b.bun.ID,
			Hash: "h-" + b.bun.Bottle, HashVersion: "1",
			State: bottle.StateRunning, Health: bottle.HealthNone, Addr: bottle.BundleAddr(b.net.Subnet),
		}
		if !dockertest.SameResource(b.bun, want) {
			t.Errorf("Create() = %+v\nwant %+v", b.bun, want)
		}
		if !dockertest.SameResource(obs[want.Name], b.bun) {
			t.Errorf("Observe() = %+v\nwant %+v", obs[want.Name], b.bun)
		}
	}

	b := bottles[0]
	c, err := cli.ContainerInspect(ctx, b.bun.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertHardened(t, c)
	cfg, err := bundle.DecodeConfig(envValue(c.Config.Env, bundle.ConfigEnv))
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := bundle.Config{
		Bottle: b.bun.Bottle, Daemons: []string{},
		Allow:  []string{"api.example.com", "*.foo.org:8443"},
		Listen: bottle.BundleAddr(b.net.Subnet), Refuse: []netip.Prefix{opts.Pool},
		HostAddrs:    []netip.Addr{hostIP},
		DNSQueryRate: 50, DNSQueryBurst: 500, MaxWildcardBytes: 40,
	}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Errorf("bundle config = %+v, want %+v", cfg, wantCfg)
	}
	if ep := c.NetworkSettings.Networks[b.net.Name]; ep == nil || ep.IPAddress != bottle.BundleAddr(b.net.Subnet).String() {
		t.Errorf("bundle endpoint on %s = %+v, want address %s", b.net.Name, ep, bottle.BundleAddr(b.net.Subnet))
	}
	if _, ok := c.NetworkSettings.Networks[dockerx.EgressNetworkName(inst)]; !ok || len(c.NetworkSettings.Networks) != 2 {
		t.Errorf("bundle networks = %v, want its bottle network and %s", slices.Collect(mapKeys(c.NetworkSettings.Networks)), dockerx.EgressNetworkName(inst))
	}
	eg, err := cli.NetworkInspect(ctx, dockerx.EgressNetworkName(inst), network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if eg.Internal || eg.EnableIPv6 || eg.Options["com.docker.network.bridge.enable_icc"] != "false" ||
		eg.Labels[bottle.LabelRole] != dockerx.RoleEgress || eg.Labels[bottle.LabelInstance] != inst {
		t.Errorf("egress network = internal %v ipv6 %v options %v labels %v", eg.Internal, eg.EnableIPv6, eg.Options, eg.Labels)
	}

	// A reconciler of another instance never removes it, even by name.
	if err := bd.Delete(ctx, bottle.Resource{Name: b.bun.Name, Instance: "someone-else"}); !cerrdefs.IsConflict(err) ||
		!strings.Contains(err.Error(), fmt.Sprintf("remove bundle %q", b.bun.Name)) || !strings.Contains(err.Error(), fmt.Sprintf("instance %q", inst)) {
		t.Errorf("Delete() by another instance = %v, want a conflict naming the bundle and %s", err, inst)
	}
	if _, err := cli.ContainerInspect(ctx, b.bun.ID); err != nil {
		t.Errorf("bundle removed by another instance: %v", err)
	}
	// Create is for a missing bundle only.
	if _, err := bd.Create(ctx, bundleWant(inst, b.bun.Bottle, b.net.Subnet, s)); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Create() of an existing bundle = %v, want a conflict", err)
	}
	// A network in use is not removed, and the error names what uses it.
	if err := nd.Delete(ctx, b.net); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), fmt.Sprintf("%q", b.bun.Name)) {
		t.Errorf("Delete() of a network in use = %v, want a conflict naming %s", err, b.bun.Name)
	}
	// The egress network is in use: left alone, without error.
	if err := bd.RemoveEgressNetwork(ctx, inst); err != nil {
		t.Errorf("RemoveEgressNetwork() in use = %v", err)
	}
	if _, err := cli.NetworkInspect(ctx, dockerx.EgressNetworkName(inst), network.InspectOptions{}); err != nil {
		t.Errorf("egress network removed while in use: %v", err)
	}

	// A dead bundle is observed as stopped, still at its address: the
	// reconciler, not Docker, decides what to do about it.
	if err := cli.ContainerKill(ctx, b.bun.ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	waitc, errc := cli.ContainerWait(ctx, b.bun.ID, container.WaitConditionNotRunning)
	select {
	case <-waitc:
	case err := <-errc:
		t.Fatal(err)
	}
	if got, err = bd.Observe(ctx); err != nil {
		t.Fatal(err)
	}
	dead := mine(got, inst)[b.bun.Name]
	if dead.State != bottle.StateStopped || dead.Detail != "exited (137)" || dead.Health != bottle.HealthNone || dead.Addr != b.bun.Addr {
		t.Errorf("killed bundle observed as state %q detail %q health %q addr %s; want stopped, exited (137), no health, %s",
			dead.State, dead.Detail, dead.Health, dead.Addr, b.bun.Addr)
	}

	for _, b := range bottles {
		if err := bd.Delete(ctx, b.bun); err != nil {
			t.Error(err)
		}
		if err := bd.Delete(ctx, b.bun); err != nil {
			t.Errorf("Delete() of a removed bundle = %v", err)
		}
		if err := nd.Delete(ctx, b.net); err != nil {
			t.Error(err)
		}
	}
	if err := bd.RemoveEgressNetwork(ctx, inst); err != nil {
		t.Error(err)
	}
	assertNoneLeft(t, cli, inst)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func envValue(env []string, key string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

// assertHardened checks every hardening default on an inspected bundle.
func assertHardened(t *testing.T, c container.InspectResponse) {
	t.Helper()
	h := c.HostConfig
	checks := []struct {
		name string
		ok   bool
		got  any
	}{
		{"not privileged", !h.Privileged, h.Privileged},
		{"all capabilities dropped", slices.Equal(h.CapDrop, []string{"ALL"}), h.CapDrop},
		{"no capability added", len(h.CapAdd) == 0, h.CapAdd},
		{"no-new-privileges", slices.Contains(h.SecurityOpt, "no-new-privileges"), h.SecurityOpt},
		{"read-only rootfs", h.ReadonlyRootfs, h.ReadonlyRootfs},
		{"no mounts", len(c.Mounts) == 0 && len(h.Binds) == 0 && len(h.Mounts) == 0 && len(h.Tmpfs) == 0, c.Mounts},
		{"no published ports", len(h.PortBindings) == 0 && !h.PublishAllPorts, h.PortBindings},
		{"pids limit", h.PidsLimit != nil && *h.PidsLimit == bundlePidsLimit, h.PidsLimit},
		{"memory limit", h.Memory == bundleMemory, h.Memory},
		{"restart policy no", h.RestartPolicy.Name == container.RestartPolicyDisabled, h.RestartPolicy},
		{"port 53 without caps", h.Sysctls["net.ipv4.ip_unprivileged_port_start"] == "0", h.Sysctls},
		{"runs as nobody", c.Config.User == "65534:65534", c.Config.User},
		{"no health check (nothing runs in it at rest)", c.Config.Healthcheck != nil && slices.Equal(c.Config.Healthcheck.Test, []string{"NONE"}), c.Config.Healthcheck},
		{"not on the host network", !h.NetworkMode.IsHost(), h.NetworkMode},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("bundle not hardened: want %s, got %v", c.name, c.got)
		}
	}
}

func TestBundleNotReadyInTime(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	opts := testOptions("10.215.6.0/24")
	// Shorter than a container start: the ready line cannot come in time.
	opts.ReadyTimeout = time.Millisecond
	nd, bd := newDrivers(t, cli, opts)
	n, _, err := bottleUp(ctx, t, nd, bd, inst, inst+"-slow", spec.Spec{Daemons: []string{}})
	name := bottle.Names(inst+"-slow", bottle.RoleBundle)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("create bundle %q: not ready after 1ms", name)) {
		t.Fatalf("Create() = %v, want a not-ready error naming %s", err, name)
	}
	// Nothing half made is left.
	got, err := bd.Observe(ctx)
	if err != nil || len(mine(got, inst)) != 0 {
		t.Errorf("Observe() after a failed create = %v, %v; want none", mine(got, inst), err)
	}
	if err := nd.Delete(ctx, n); err != nil {
		t.Error(err)
	}
	if err := bd.RemoveEgressNetwork(ctx, inst); err != nil {
		t.Error(err)
	}
	assertNoneLeft(t, cli, inst)
}

func TestBundleNameCollision(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	nd, bd := newDrivers(t, cli, testOptions("10.215.7.0/24"))
	image, err := bd.ensureImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bottleName := inst + "-taken"
	name := bottle.Names(bottleName, bottle.RoleBundle)
	// Someone else's container with the bundle's name, never started.
	if _, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Labels: map[string]string{testLabel: inst}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, name); err != nil {
		t.Fatal(err)
	}
	n, err := nd.Create(ctx, networkWant(inst, bottleName))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bd.Create(ctx, bundleWant(inst, bottleName, n.Subnet, spec.Spec{Daemons: []string{}}))
	wantMsg := fmt.Sprintf(`dockernet: create bundle %q: a container of that name exists and is not managed by bottle-reconcile; remove or rename it`, name)
	if !cerrdefs.IsConflict(err) || !strings.HasPrefix(err.Error(), wantMsg) {
		t.Errorf("Create() over a foreign container = %v\nwant a conflict starting %q", err, wantMsg)
	}
	if err := bd.Delete(ctx, bottle.Resource{Name: name}); !cerrdefs.IsConflict(err) ||
		!strings.Contains(err.Error(), fmt.Sprintf("remove bundle %q", name)) || !strings.Contains(err.Error(), "not managed by bottle-reconcile") {
		t.Errorf("Delete() of a foreign container = %v, want a conflict naming %s", err, name)
	}
	if _, err := cli.ContainerInspect(ctx, name); err != nil {
		t.Errorf("the foreign container is gone: %v", err)
	}
	if err := nd.Delete(ctx, n); err != nil {
		t.Error(err)
	}
}

// binaryOfItsOwn returns options whose bundle binary is the test binary
// with random bytes after it, and those bytes: its image cannot be cached
// from another run, and it is removed after the test.
func binaryOfItsOwn(t *testing.T, cli dockerAPI) (Options, []byte) {
	t.Helper()
	bin, err := os.ReadFile(testBinary)
	if err != nil {
		t.Fatal(err)
	}
	bin = append(bin, []byte(rand.Text())...)
	opts := testOptions("")
	opts.BundleBinary = filepath.Join(t.TempDir(), "bottle-reconcile")
	if err := os.WriteFile(opts.BundleBinary, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), imageTag(bin), image.RemoveOptions{Force: true, PruneChildren: true})
	})
	return opts, bin
}

// Prepare finds or builds the image; once it has, a create needs nothing
// more of the binary (no hashing, no build on a watcher's first heal).
func TestBundleImagePrepare(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	opts, bin := binaryOfItsOwn(t, cli)
	want := imageTag(bin)
	api := &buildCounter{dockerAPI: cli}
	_, fresh := newDrivers(t, api, opts)
	_, unprepared := newDrivers(t, api, opts)
	if err := fresh.Prepare(ctx); err != nil || api.builds.Load() != 1 {
		t.Fatalf("Prepare() with no image = %v after %d builds; want it built once", err, api.builds.Load())
	}
	if _, err := cli.ImageInspect(ctx, want); err != nil {
		t.Fatalf("Prepare() did not build %s: %v", want, err)
	}

	_, restarted := newDrivers(t, api, opts)
	if err := restarted.Prepare(ctx); err != nil || api.builds.Load() != 1 {
		t.Fatalf("Prepare() with the image there = %v after %d builds in all; want it found", err, api.builds.Load())
	}
	if err := os.Remove(opts.BundleBinary); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*Driver{"built": fresh, "found": restarted} {
		if tag, err := d.ensureImage(ctx); err != nil || tag != want {
			t.Errorf("prepared (image %s), then the binary gone: ensureImage() = %s, %v; want %s", name, tag, err, want)
		}
	}
	if _, err := unprepared.ensureImage(ctx); err == nil {
		t.Error("unprepared, the binary gone: ensureImage() succeeded; it must read the binary, or this test shows nothing")
	}
}

func TestBundleImageBuiltOnce(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	opts, own := binaryOfItsOwn(t, cli)
	bin, err := os.ReadFile(testBinary)
	if err != nil {
		t.Fatal(err)
	}
	api := &buildCounter{dockerAPI: cli}
	_, bd := newDrivers(t, api, opts)
	tags := make([]string, 4)
	var wg sync.WaitGroup
	for i := range tags {
		wg.Go(func() {
			tag, err := bd.ensureImage(ctx)
			if err != nil {
				t.Error(err)
			}
			tags[i] = tag
		})
	}
	wg.Wait()
	if tags[0] == "" || slices.ContainsFunc(tags, func(s string) bool { return s != tags[0] }) {
		t.Errorf("tags = %v, want one tag", tags)
	}
	if n := api.builds.Load(); n != 1 {
		t.Errorf("built %d times, want once", n)
	}
	img, err := cli.ImageInspect(ctx, tags[0])
	if err != nil {
		t.Fatal(err)
	}
	if img.Config == nil || img.Config.User != "65534:65534" || !slices.Equal(img.Config.Entrypoint, []string{"/bottle-reconcile"}) ||
		img.Config.Labels[bottle.LabelManagedBy] != bottle.ManagedByValue {
		t.Errorf("image config = %+v", img.Config)
	}
	if want := imageTag(own); tags[0] != want || !strings.HasPrefix(want, ImageRepo+":") {
		t.Errorf("tag = %s, want the content tag %s", tags[0], want)
	}
	if imageTag(bin) == tags[0] {
		t.Errorf("another binary has the same tag %s", tags[0])
	}

	// A restarted reconciler (a new driver value) finds the image: no build.
	restarted := &buildCounter{dockerAPI: cli}
	_, bd2 := newDrivers(t, restarted, opts)
	if tag, err := bd2.ensureImage(ctx); err != nil || tag != tags[0] || restarted.builds.Load() != 0 {
		t.Errorf("after a restart ensureImage() = %s, %v with %d builds; want %s and no build", tag, err, restarted.builds.Load(), tags[0])
	}

	// Removed behind the driver's back (docker image prune): built again.
	if _, err := cli.ImageRemove(ctx, tags[0], image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatal(err)
	}
	if tag, err := bd.ensureImage(ctx); err != nil || tag != tags[0] || api.builds.Load() != 2 {
		t.Errorf("after the image was removed ensureImage() = %s, %v with %d builds in all; want %s rebuilt once", tag, err, api.builds.Load(), tags[0])
	}
	if _, err := cli.ImageInspect(ctx, tags[0]); err != nil {
		t.Errorf("image not rebuilt: %v", err)
	}
}
