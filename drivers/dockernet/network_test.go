package dockernet

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// foreignNetwork makes a network without our labels, as a user might.
func foreignNetwork(ctx context.Context, t *testing.T, cli *client.Client, inst, name, subnet string) {
	t.Helper()
	opts := network.CreateOptions{Driver: "bridge", Labels: map[string]string{testLabel: inst}}
	if subnet != "" {
		opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}}
	}
	if _, err := cli.NetworkCreate(ctx, name, opts); err != nil {
		t.Fatalf("create foreign network %s: %v", name, err)
	}
}

func TestNetworkCreateObserveDelete(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	nd := newDriver(t, cli, testOptions("10.215.1.0/24"))

	allocated := networkWant(inst, inst+"-a")
	pinned := networkWant(inst, inst+"-b")
	pinned.Subnet = mustPrefix("10.215.1.64/29")

	ra, err := nd.Create(ctx, allocated)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := nd.Create(ctx, pinned)
	if err != nil {
		t.Fatal(err)
	}
	if !mustPrefix("10.215.1.0/24").Contains(ra.Subnet.Addr()) || ra.Subnet.Bits() != dockerx.SubnetBits || ra.Subnet.Overlaps(rb.Subnet) {
		t.Errorf("allocated subnet %s, want a /29 of 10.215.1.0/24 not overlapping %s", ra.Subnet, rb.Subnet)
	}
	if rb.Subnet != pinned.Subnet {
		t.Errorf("pinned subnet = %s, want %s", rb.Subnet, pinned.Subnet)
	}
	want := bottle.Resource{
		Kind: NetworkKind, Role: bottle.RoleNetwork, Bottle: allocated.Bottle, Instance: inst,
		Name: allocated.Name, ID: ra.ID, Hash: "h-" + allocated.Bottle, HashVersion: "1",
		State: bottle.StateRunning, Subnet: ra.Subnet,
	}
	if ra.ID == "" || !dockertest.SameResource(ra, want) {
		t.Errorf("Create() = %+v, want %+v", ra, want)
	}
	if ra.Labels[LabelSubnet] != ra.Subnet.String() {
		t.Errorf("subnet label = %q, want %s", ra.Labels[LabelSubnet], ra.Subnet)
	}

	// Created again: the same network, as a concurrent create would see it.
	again, err := nd.Create(ctx, allocated)
	if err != nil || again.ID != ra.ID {
		t.Errorf("second Create() = %s, %v; want the existing %s", again.ID, err, ra.ID)
	}
	// ... but not with another hash.
	changed := networkWant(inst, allocated.Bottle)
	changed.Labels[bottle.LabelHash] = "other"
	if _, err := nd.Create(ctx, changed); !cerrdefs.IsConflict(err) {
		t.Errorf("Create() with another hash = %v, want a conflict", err)
	}

	got, err := nd.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	obs := mine(got, inst)
	if len(obs) != 2 || !dockertest.SameResource(obs[ra.Name], ra) || !dockertest.SameResource(obs[rb.Name], rb) {
		t.Errorf("Observe() = %+v, want %+v and %+v", obs, ra, rb)
	}

	n, err := cli.NetworkInspect(ctx, ra.ID, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != "bridge" || !n.Internal || n.EnableIPv6 || len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Gateway != bottle.Gateway(ra.Subnet).String() {
		t.Errorf("network = driver %s internal %v ipv6 %v ipam %+v; want an internal IPv4-only bridge with gateway %s",
			n.Driver, n.Internal, n.EnableIPv6, n.IPAM.Config, bottle.Gateway(ra.Subnet))
	}

	for _, r := range []bottle.Resource{ra, rb} {
		if err := nd.Delete(ctx, r); err != nil {
			t.Error(err)
		}
		if err := nd.Delete(ctx, r); err != nil {
			t.Errorf("Delete() of a removed network = %v, want nil", err)
		}
	}
	if got, err := nd.Observe(ctx); err != nil || len(mine(got, inst)) != 0 {
		t.Errorf("Observe() after delete = %v, %v; want none", mine(got, inst), err)
	}
	assertNoneLeft(t, cli, inst)
}

func TestNetworkAllocationStepsAroundForeign(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	// Someone else's networks in the middle of our pool.
	foreignNetwork(ctx, t, cli, inst, "foreign-"+inst+"-1", "10.215.2.0/29")
	foreignNetwork(ctx, t, cli, inst, "foreign-"+inst+"-2", "10.215.2.16/28")
	nd := newDriver(t, cli, testOptions("10.215.2.0/24"))

	var got []string
	for i := range 3 {
		r, err := nd.Create(ctx, networkWant(inst, fmt.Sprintf("%s-%d", inst, i)))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Subnet.String())
		t.Cleanup(func() { nd.Delete(context.Background(), r) })
	}
	want := []string{"10.215.2.8/29", "10.215.2.32/29", "10.215.2.40/29"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("subnets = %v, want %v", got, want)
	}

	// A pinned subnet over someone else's is refused before Docker sees it.
	w := networkWant(inst, inst+"-pinned")
	w.Subnet = mustPrefix("10.215.2.16/29")
	if _, err := nd.Create(ctx, w); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "overlaps 10.215.2.16/28") {
		t.Errorf("Create(pinned over a foreign network) = %v, want a conflict naming 10.215.2.16/28", err)
	}
}

// hostRoute adds a blackhole route for p to the host for the test's
// duration; it skips when routes cannot be added (not root), or fails
// under BOTTLE_REQUIRE_DOCKER=1.
func hostRoute(t *testing.T, p string) {
	t.Helper()
	if out, err := exec.Command("ip", "route", "add", "blackhole", p).CombinedOutput(); err != nil {
		dockertest.Lacks(t, fmt.Errorf("cannot add a host route (needs root and iproute2): %w: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "route", "del", "blackhole", p).CombinedOutput(); err != nil {
			t.Errorf("remove host route %s: %v: %s", p, err, out)
		}
	})
}

func TestNetworkAllocationStepsAroundHostRoutes(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	// Routes the host has (a VPN, a LAN) in the middle of our pool.
	hostRoute(t, "10.215.10.0/29")
	hostRoute(t, "10.215.10.16/28")
	nd := newDriver(t, cli, testOptions("10.215.10.0/24"))

	var got []string
	for i := range 2 {
		r, err := nd.Create(ctx, networkWant(inst, fmt.Sprintf("%s-%d", inst, i)))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Subnet.String())
		t.Cleanup(func() { nd.Delete(context.Background(), r) })
	}
	if want := []string{"10.215.10.8/29", "10.215.10.32/29"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("subnets = %v, want %v", got, want)
	}
	w := networkWant(inst, inst+"-pinned")
	w.Subnet = mustPrefix("10.215.10.24/29")
	if _, err := nd.Create(ctx, w); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "overlaps 10.215.10.16/28") {
		t.Errorf("Create(pinned over a host route) = %v, want a conflict naming 10.215.10.16/28", err)
	}
}

func TestNetworkHundredConcurrent(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	opts := testOptions("10.214.0.0/16")
	// Two driver values, as two processes would be, sharing the lock file.
	nd1 := newDriver(t, cli, opts)
	nd2 := newDriver(t, cli, opts)

	const bottles, workers = 100, 8
	jobs := make(chan int)
	var mu sync.Mutex
	var created []bottle.Resource
	var wg sync.WaitGroup
	for w := range workers {
		d := nd1
		if w%2 == 1 {
			d = nd2
		}
		wg.Go(func() {
			for i := range jobs {
				r, err := d.Create(ctx, networkWant(inst, fmt.Sprintf("%s-%03d", inst, i)))
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				created = append(created, r)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for i := range bottles {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("created %d networks in %s", len(created), time.Since(start))
	if len(created) != bottles {
		t.Fatalf("created %d networks, want %d", len(created), bottles)
	}
	for i, a := range created {
		if !opts.Pool.Contains(a.Subnet.Addr()) || a.Subnet.Bits() != dockerx.SubnetBits {
			t.Errorf("%s got %s, not a /29 of %s", a.Name, a.Subnet, opts.Pool)
		}
		for _, b := range created[i+1:] {
			if a.Subnet.Overlaps(b.Subnet) {
				t.Errorf("%s and %s share %s and %s", a.Name, b.Name, a.Subnet, b.Subnet)
			}
		}
	}

	jobs = make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if err := nd1.Delete(ctx, created[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range created {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	assertNoneLeft(t, cli, inst)
}

func TestNetworkRecoveryAfterRestart(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	opts := testOptions("10.215.3.0/24")
	before := newDriver(t, cli, opts)
	want := map[string]netip.Prefix{}
	for i := range 3 {
		r, err := before.Create(ctx, networkWant(inst, fmt.Sprintf("%s-%d", inst, i)))
		if err != nil {
			t.Fatal(err)
		}
		want[r.Name] = r.Subnet
	}

	// A new driver value knows nothing but what Docker reports.
	after := newDriver(t, cli, opts)
	got, err := after.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	obs := mine(got, inst)
	for name, subnet := range want {
		if obs[name].Subnet != subnet {
			t.Errorf("after restart %s has %s, want %s", name, obs[name].Subnet, subnet)
		}
	}
	r, err := after.Create(ctx, networkWant(inst, inst+"-new"))
	if err != nil {
		t.Fatal(err)
	}
	for name, subnet := range want {
		if subnet.Overlaps(r.Subnet) {
			t.Errorf("new network got %s, which %s already has", r.Subnet, name)
		}
	}
	obs[r.Name] = r
	for _, r := range obs {
		if err := after.Delete(ctx, r); err != nil {
			t.Error(err)
		}
	}
	assertNoneLeft(t, cli, inst)
}

func TestNetworkNameCollisions(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	other := newInstance(t, cli)
	opts := testOptions("10.215.4.0/24")
	nd := newDriver(t, cli, opts)

	// Someone else's network with a bottle's name.
	foreign := networkWant(inst, inst+"-foreign")
	foreignNetwork(ctx, t, cli, inst, foreign.Name, "")
	_, err := nd.Create(ctx, foreign)
	wantMsg := fmt.Sprintf(`dockernet: create network %q: a network of that name exists and is not managed by bottle-reconcile; remove or rename it`, foreign.Name)
	if !cerrdefs.IsConflict(err) || !strings.HasPrefix(err.Error(), wantMsg) {
		t.Errorf("Create() over a foreign network = %v\nwant a conflict starting %q", err, wantMsg)
	}
	// Delete never removes it, even when asked by name.
	if err := nd.Delete(ctx, bottle.Resource{Name: foreign.Name}); !cerrdefs.IsConflict(err) ||
		!strings.Contains(err.Error(), fmt.Sprintf("remove network %q", foreign.Name)) || !strings.Contains(err.Error(), "not managed by bottle-reconcile") {
		t.Errorf("Delete() of a foreign network = %v, want a conflict naming %s", err, foreign.Name)
	}
	if _, err := cli.NetworkInspect(ctx, foreign.Name, network.InspectOptions{}); err != nil {
		t.Errorf("the foreign network is gone: %v", err)
	}

	// Another instance's network with the same name.
	theirs := networkWant(other, inst+"-shared")
	r, err := nd.Create(ctx, theirs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nd.Create(ctx, networkWant(inst, inst+"-shared"))
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), fmt.Sprintf("instance %q", other)) {
		t.Errorf("Create() over another instance's network = %v, want a conflict naming %s", err, other)
	}
	// Asked by name to delete our network of that name, it finds theirs
	// and leaves it alone.
	mistaken := bottle.Resource{Name: theirs.Name, Instance: inst}
	if err := nd.Delete(ctx, mistaken); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), fmt.Sprintf("instance %q", other)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("remove network %q", theirs.Name)) {
		t.Errorf("Delete() of another instance's network = %v, want a conflict naming it and %s", err, other)
	}
	if _, err := cli.NetworkInspect(ctx, r.ID, network.InspectOptions{}); err != nil {
		t.Errorf("another instance's network is gone: %v", err)
	}
	if err := nd.Delete(ctx, r); err != nil {
		t.Error(err)
	}
}

func TestDeleteGone(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	nd := newDriver(t, cli, testOptions(""))
	gone := bottle.Resource{Name: "bottle-never-was-here", ID: strings.Repeat("ab", 32)}
	if err := nd.Delete(ctx, gone); err != nil {
		t.Errorf("NetworkDriver.Delete(gone) = %v", err)
	}
	gone.ID = ""
	if err := nd.Delete(ctx, gone); err != nil {
		t.Errorf("NetworkDriver.Delete(gone by name) = %v", err)
	}
}

func TestObserveCallCount(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	api := &countingAPI{dockerAPI: cli}
	nd := newDriver(t, api, testOptions(""))
	api.Snapshot()
	if _, err := nd.Observe(ctx); err != nil {
		t.Fatal(err)
	}
	if got := api.Snapshot(); len(got) != 1 || got["NetworkList"] != 1 {
		t.Errorf("%s.Observe() made calls %v, want one NetworkList", nd.Kind(), got)
	}
}

// A daemon that does not answer is an unavailable error from every
// operation, Delete included: never nil, so the reconciler can neither take
// it for "nothing exists" nor for "already gone".
func TestDaemonDown(t *testing.T) {
	for _, tt := range []struct{ name, host string }{
		{"missing socket", "unix:///nonexistent/docker.sock"},
		{"unreachable DOCKER_HOST", "tcp://127.0.0.1:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.host)
			cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx := testContext(t)
			nd := newDriver(t, cli, testOptions("10.215.9.0/24"))
			rs, err := nd.Observe(ctx)
			if rs != nil || !cerrdefs.IsUnavailable(err) {
				t.Errorf("Observe() = %v, %v; want nil and an unavailable error", rs, err)
			}
			w := networkWant("test-down", "test-down-a")
			if _, err := nd.Create(ctx, w); !cerrdefs.IsUnavailable(err) || !strings.Contains(err.Error(), w.Name) {
				t.Errorf("Create() = %v, want an unavailable error naming %s", err, w.Name)
			}
			r := bottle.Resource{Name: w.Name, ID: strings.Repeat("ab", 32)}
			if err := nd.Delete(ctx, r); !cerrdefs.IsUnavailable(err) || !strings.Contains(err.Error(), r.Name) {
				t.Errorf("Delete() = %v, want an unavailable error naming %s, not success", err, r.Name)
			}
		})
	}
}
