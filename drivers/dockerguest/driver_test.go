package dockerguest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"

	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw/hostfwtest"
	"github.com/bottle-reconcile/bottle-reconcile/internal/procroute"
)

const secretValue = "s3cr3t-value-never-shown"

// testWant is a guest Want as the reconciler resolves it: spec.env, a host
// secret from envFromHost and the bundle's proxy settings.
func testWant(inst, bottleName string, subnet netip.Prefix) bottle.Want {
	w := bottle.Want{
		Bottle: bottleName,
		Role:   bottle.RoleGuest,
		Name:   "bottle-" + bottleName + "-guest",
		Labels: bottle.OwnerLabels(inst, bottleName, bottle.RoleGuest, "h-"+bottleName),
		Guest: bottle.GuestInputs{
			Kind: spec.GuestDocker, Image: "guest:test",
			Daemons: []string{spec.DaemonEgress, spec.DaemonDNS},
			CPUs:    2, MemoryMiB: 256,
		},
		Network: "bottle-" + bottleName,
	}
	w.Fill(subnet)
	w.Guest.Env = []bottle.EnvVar{
		{Name: "FOO", Source: bottle.EnvFromSpec, Value: "bar"},
		{Name: "TOKEN", Source: bottle.EnvFromHost, Value: secretValue},
	}
	for k, v := range bundle.GuestEnv(w.Guest.Daemons, w.BundleAddr) {
		w.Guest.Env = append(w.Guest.Env, bottle.EnvVar{Name: k, Source: bottle.EnvFromBundle, Value: v})
	}
	slices.SortFunc(w.Guest.Env, func(a, b bottle.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return w
}

// createdAlice returns a driver on fresh fakes, and the guest it created for
// bottle alice of instance inst.
func createdAlice(t *testing.T) (*Driver, *fakeDocker, *hostfwtest.IPTables, bottle.Resource) {
	t.Helper()
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	r, err := d.Create(context.Background(), testWant("inst", "alice", subnet))
	if err != nil {
		t.Fatal(err)
	}
	return d, api, ipt, r
}

func newFakeDriver(t *testing.T, api *fakeDocker, ipt *hostfwtest.IPTables) *Driver {
	t.Helper()
	d, err := newDriver(api, Options{}, testr.New(t), ipt)
	if err != nil {
		t.Fatal(err)
	}
	if api.net == nil {
		api.net = newFakeNet()
	}
	d.net = api.net
	return d
}

var subnet = netip.MustParsePrefix("10.215.0.0/29")

func TestNameFor(t *testing.T) {
	d := newFakeDriver(t, newFakeDocker(), hostfwtest.New(hostfwtest.DockerOnly))
	if got := d.NameFor("alice"); got != "bottle-alice-guest" {
		t.Errorf("NameFor = %q", got)
	}
	if d.Kind() != "docker-guest" || d.Role() != bottle.RoleGuest {
		t.Errorf("kind %q role %q", d.Kind(), d.Role())
	}
}

// TestLifecycleFake walks create, observe, drift, repair, stop, start and
// delete against fakes, counting the calls that must stay few.
func TestLifecycleFake(t *testing.T) {
	ctx := context.Background()
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	var log []string
	api.log, ipt.Log = &log, &log
	d := newFakeDriver(t, api, ipt)
	w := testWant("inst", "alice", subnet)

	r, err := d.Create(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	// Fail-closed order: rules go in between create and start.
	order := slices.DeleteFunc(slices.Clone(log), func(s string) bool {
		return s != "ContainerCreate" && s != "iptables-restore" && s != "ContainerStart"
	})
	if !slices.Equal(order, []string{"ContainerCreate", "iptables-restore", "ContainerStart"}) {
		t.Errorf("create order %q", order)
	}
	if r.State != bottle.StateRunning || r.Addr != w.GuestAddr || r.Name != "bottle-alice-guest" {
		t.Errorf("created %+v", r)
	}

	observe := func() bottle.Resource {
		t.Helper()
		saves, lists := ipt.Count("iptables-save"), len(api.calls)
		rs, err := d.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Once, or not at all while the ruleset is as the last read
		// found it (hostfw.NewFirewall).
		if n := ipt.Count("iptables-save") - saves; n > 1 {
			t.Errorf("observe read the firewall %d times, want at most 1", n)
		}
		if len(rs) != 1 {
			t.Fatalf("observed %d guests, want 1: %+v", len(rs), rs)
		}
		// One list, and nothing per guest: a running guest's pid comes
		// from its cgroup.
		if n := len(api.calls) - lists; n != 1 {
			t.Errorf("observe made %d Docker calls (%q), want 1", n, api.calls[lists:])
		}
		return rs[0]
	}
	guestRoutes := func() []procroute.Route {
		t.Helper()
		c := api.containers["bottle-alice-guest"]
		rs, err := api.net.routes(ctx, c.pid)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	narrowed := []procroute.Route{{Dev: "eth0", Dst: netip.PrefixFrom(w.BundleAddr, 32)}}
	if rs := guestRoutes(); !slices.Equal(rs, narrowed) {
		t.Errorf("routes after create %v, want only %v", rs, narrowed)
	}
	got := observe()
	if got.Drift != "" || got.Bottle != "alice" || got.Instance != "inst" || got.Hash != "h-alice" || got.Kind != Kind {
		t.Errorf("observed %+v", got)
	}

	ipt.DeleteTagged(hostfw.IPv4, Chain, ruleComment("inst", "alice"), func(i int) bool { return i != 5 })
	if got = observe(); got.Drift != "host firewall rules incomplete" {
		t.Errorf("drift %q after one rule went", got.Drift)
	}
	ipt.DeleteTagged(hostfw.IPv4, Chain, ruleComment("inst", "alice"), func(int) bool { return false })
	if got = observe(); got.Drift != "host firewall rules missing" {
		t.Errorf("drift %q after the rules went", got.Drift)
	}
	if err := d.Repair(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got = observe(); got.Drift != "" {
		t.Errorf("drift %q after repair", got.Drift)
	}

	// Docker's routes back (as after a restart behind the driver's back).
	c := api.containers["bottle-alice-guest"]
	api.net.boot(c.id, c.pid, w.GuestAddr.String())
	if got = observe(); !strings.HasPrefix(got.Drift, "guest routes beyond its bundle: 0.0.0.0/0 via 10.215.0.1 dev eth0") {
		t.Errorf("drift %q with Docker's routes back", got.Drift)
	}
	if err := d.Repair(ctx, got); err != nil {
		t.Fatal(err)
	}
	if rs := guestRoutes(); !slices.Equal(rs, narrowed) {
		t.Errorf("routes after repair %v, want only %v", rs, narrowed)
	}
	if got = observe(); got.Drift != "" {
		t.Errorf("drift %q after the routes were repaired", got.Drift)
	}
	batches := len(api.net.batches)
	restores := ipt.Count("iptables-restore")
	if err := d.Repair(ctx, got); err != nil {
		t.Fatal(err)
	}
	if ipt.Count("iptables-restore") != restores || len(api.net.batches) != batches {
		t.Error("repair of rules and routes in place changed them")
	}

	// Stop freezes; Start thaws, rules first. Frozen twice is still frozen.
	for range 2 {
		if err := d.Stop(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
	if got = observe(); got.State != bottle.StateStopped || got.Detail != "paused" || got.Addr != w.GuestAddr || got.Drift != "" {
		t.Errorf("stopped guest observed as %+v", got)
	}
	ipt.DeleteTagged(hostfw.IPv4, Chain, ruleComment("inst", "alice"), func(int) bool { return false })
	log = nil
	if err := d.Start(ctx, got); err != nil {
		t.Fatal(err)
	}
	if i, j := slices.Index(log, "iptables-restore"), slices.Index(log, "ContainerUnpause"); i < 0 || j < i || slices.Contains(log, "ContainerStart") {
		t.Errorf("start did not put the rules back before thawing, or started anew: %q", log)
	}
	if n := count(log, "ContainerInspect"); n != 1 {
		t.Errorf("a thaw inspected the guest %d times, want once (each is a call on the heal's path): %q", n, log)
	}
	if got = observe(); got.State != bottle.StateRunning || got.Drift != "" {
		t.Errorf("thawed guest observed as %+v", got)
	}
	if rs := guestRoutes(); !slices.Equal(rs, narrowed) {
		t.Errorf("routes after thaw %v, want only %v", rs, narrowed)
	}

	// A guest that exited (it died, or was stopped by hand) is started
	// anew, rules first, and its fresh namespace narrowed.
	c = api.containers["bottle-alice-guest"]
	c.state, c.pid = container.StateExited, 0
	api.net.halt(c.id)
	if err := d.Stop(ctx, got); err != nil {
		t.Errorf("Stop of an exited guest: %v", err)
	}
	if got = observe(); got.State != bottle.StateStopped {
		t.Errorf("exited guest observed as %+v", got)
	}
	ipt.DeleteTagged(hostfw.IPv4, Chain, ruleComment("inst", "alice"), func(int) bool { return false })
	log = nil
	if err := d.Start(ctx, got); err != nil {
		t.Fatal(err)
	}
	if i, j := slices.Index(log, "iptables-restore"), slices.Index(log, "ContainerStart"); i < 0 || j < i {
		t.Errorf("start did not put the rules back before starting: %q", log)
	}
	if got = observe(); got.State != bottle.StateRunning || got.Drift != "" {
		t.Errorf("started guest observed as %+v", got)
	}
	if rs := guestRoutes(); !slices.Equal(rs, narrowed) {
		t.Errorf("routes after start %v, want only %v", rs, narrowed)
	}

	if err := d.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	if len(api.containers) != 0 || len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))) != 0 {
		t.Errorf("left behind: %d containers, rules %q", len(api.containers), tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice")))
	}
	for _, call := range []func() error{
		func() error { return d.Delete(ctx, got) },
		func() error { return d.Stop(ctx, got) },
	} {
		if err := call(); err != nil {
			t.Errorf("on a missing guest: %v", err)
		}
	}
	restores = ipt.Count("iptables-restore")
	if err := d.Start(ctx, got); !cerrdefs.IsNotFound(err) {
		t.Errorf("start of a missing guest: %v, want not found", err)
	}
	if ipt.Count("iptables-restore") != restores {
		t.Error("start of a missing guest installed rules")
	}
}

// TestScopedObserveSeesTheFirewall: a pass over one bottle (a heal's)
// reads the firewall as any pass does, so it sees rules removed since the
// last read; while nothing changed the ruleset, that read runs no
// iptables-save.
func TestScopedObserveSeesTheFirewall(t *testing.T) {
	ctx := context.Background()
	d, api, ipt, r := createdAlice(t)
	scoped := bottle.WithScope(ctx, "alice")
	check := func(ctx context.Context, wantSaves int, wantDrift, why string) bottle.Resource {
		t.Helper()
		saves := ipt.Count("iptables-save")
		rs, err := d.Observe(ctx)
		if err != nil || len(rs) != 1 {
			t.Fatalf("observe: %+v, %v", rs, err)
		}
		got, n := rs[0], ipt.Count("iptables-save")-saves
		if n != wantSaves || !strings.HasPrefix(got.Drift, wantDrift) || (wantDrift == "" && got.Drift != "") {
			t.Errorf("%s: drift %q after %d runs of iptables-save, want %q after %d", why, got.Drift, n, wantDrift, wantSaves)
		}
		return got
	}
	check(ctx, 1, "", "in place, the ruleset changed by the create")
	check(scoped, 0, "", "scoped, nothing changed since")

	ipt.DeleteTagged(hostfw.IPv4, Chain, ruleComment("inst", "alice"), func(int) bool { return false })
	got := check(scoped, 1, "host firewall rules missing", "scoped, rules gone since the last read")
	check(scoped, 0, "host firewall rules missing", "scoped, nothing changed since")
	check(ctx, 0, "host firewall rules missing", "whole, nothing changed since")

	// A repair that fails changes nothing; one that succeeds changes the
	// ruleset, so the next pass reads it.
	ipt.FailOn = map[string]error{"iptables-restore": errBoom}
	if err := d.Repair(ctx, got); err == nil {
		t.Fatal("repair with a failing iptables-restore succeeded")
	}
	check(scoped, 0, "host firewall rules missing", "scoped, after a failed repair")
	ipt.FailOn = nil
	if err := d.Repair(ctx, got); err != nil {
		t.Fatal(err)
	}
	check(scoped, 1, "", "scoped, after the repair")

	// Routes are the guest's own, read afresh by every pass.
	c := api.containers[r.Name]
	api.net.boot(c.id, c.pid, r.Addr.String())
	check(scoped, 0, "guest routes beyond its bundle", "scoped, Docker's routes back")
}

// TestDeleteKeepsSharedRules: rules are tagged by bottle, so deleting one of
// two guests of a bottle must not strip the other's.
func TestDeleteKeepsSharedRules(t *testing.T) {
	ctx := context.Background()
	d, api, ipt, r := createdAlice(t)
	stray := *api.containers[r.Name]
	stray.id, stray.name = "stray", "alice-stray"
	api.containers[stray.name] = &stray
	if err := d.Delete(ctx, bottle.Resource{Name: stray.name, ID: stray.id, Instance: "inst", Bottle: "alice"}); err != nil {
		t.Fatal(err)
	}
	if n := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))); n != len(testGuest().Rules()) {
		t.Errorf("%d rules left for the remaining guest", n)
	}
	if err := d.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))); n != 0 {
		t.Errorf("%d rules left after the last guest went", n)
	}
}

// A delete by name that finds another instance's guest of that name leaves
// it and its rules alone, as the other Docker drivers do.
func TestDeleteRefusesAnotherInstance(t *testing.T) {
	ctx := context.Background()
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	theirs, err := d.Create(ctx, testWant("other", "alice", subnet))
	if err != nil {
		t.Fatal(err)
	}
	err = d.Delete(ctx, bottle.Resource{Name: theirs.Name, Instance: "inst", Bottle: "alice"})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), `instance "other"`) || !strings.Contains(err.Error(), theirs.Name) {
		t.Errorf("Delete() of another instance's guest = %v, want a conflict naming it and the instance", err)
	}
	if api.containers[theirs.Name] == nil {
		t.Error("another instance's guest was removed")
	}
	if n := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("other", "alice"))); n != len(testGuest().Rules()) {
		t.Errorf("%d of its rules left, want all %d", n, len(testGuest().Rules()))
	}
}

func TestCreateUndo(t *testing.T) {
	tests := []struct {
		name   string
		docker map[string]error
		ipt    map[string]error
		rules  bool // whether rules were installed and must be gone again
	}{
		{"start fails", map[string]error{"ContainerStart": errBoom}, nil, true},
		{"firewall fails", nil, map[string]error{"iptables-restore": errBoom}, false},
		{"firewall unreadable", nil, map[string]error{"iptables-save": errBoom}, false},
		{"routes cannot be narrowed", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
			d := newFakeDriver(t, api, ipt)
			api.failOn = tt.docker
			ipt.FailOn = tt.ipt
			if tt.docker == nil && tt.ipt == nil {
				api.net.failOn = map[string]error{"apply": errBoom}
			}
			_, err := d.Create(context.Background(), testWant("inst", "alice", subnet))
			if err == nil {
				t.Fatal("create succeeded")
			}
			if !strings.Contains(err.Error(), `create guest "bottle-alice-guest"`) {
				t.Errorf("error does not name the guest: %v", err)
			}
			if len(api.containers) != 0 {
				t.Error("container left behind")
			}
			if !slices.Contains(api.calls, "ContainerRemove") {
				t.Error("container never removed")
			}
			ipt.FailOn = nil
			if n := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))); n != 0 {
				t.Errorf("%d rules left behind", n)
			}
			if tt.rules && !slices.Contains(ipt.Calls[1:], "iptables-restore") {
				t.Error("rules never installed")
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	foreign := func(api *fakeDocker) {
		api.containers["bottle-alice-guest"] = &fakeContainer{id: "x", name: "bottle-alice-guest", labels: map[string]string{"some": "thing"}}
	}
	other := func(api *fakeDocker) {
		api.containers["bottle-alice-guest"] = &fakeContainer{id: "x", name: "bottle-alice-guest",
			labels: bottle.OwnerLabels("other", "alice", bottle.RoleGuest, "h")}
	}
	tests := []struct {
		name  string
		setup func(*fakeDocker)
		edit  func(*bottle.Want)
		class func(error) bool
		say   string
	}{
		{"foreign container", foreign, nil, cerrdefs.IsConflict, "not managed by bottle-reconcile"},
		{"other instance's container", other, nil, cerrdefs.IsConflict, `instance "other"`},
		{"image missing", nil, func(w *bottle.Want) { w.Guest.Image = "nope:1" }, func(err error) bool { return err != nil },
			`pull image "docker.io/library/nope:1": registry answered: manifest unknown`},
		{"image missing, never pull", nil, func(w *bottle.Want) { w.Guest.Image, w.Guest.PullPolicy = "nope:1", spec.PullNever }, cerrdefs.IsNotFound,
			`image "nope:1" is not in the host's Docker daemon and spec.pullPolicy is never`},
		{"no labels", nil, func(w *bottle.Want) { w.Labels = map[string]string{} }, cerrdefs.IsInvalidArgument, "labels must set"},
		{"no address", nil, func(w *bottle.Want) { w.GuestAddr = netip.Addr{} }, cerrdefs.IsInvalidArgument, "need a network"},
		{"unsafe instance", nil, func(w *bottle.Want) { w.Labels[bottle.LabelInstance] = "a b" }, cerrdefs.IsInvalidArgument, "rule comment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
			if tt.setup != nil {
				tt.setup(api)
			}
			d := newFakeDriver(t, api, ipt)
			w := testWant("inst", "alice", subnet)
			if tt.edit != nil {
				tt.edit(&w)
			}
			_, err := d.Create(context.Background(), w)
			if err == nil || !tt.class(err) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("error %v, want one saying %q of the right class", err, tt.say)
			}
			if strings.Contains(err.Error(), secretValue) {
				t.Error("error carries a host variable's value")
			}
			// A create Docker refused for the name may have been tried;
			// nothing else may have happened.
			before := 0
			if tt.setup != nil {
				before = 1
			}
			if len(api.containers) != before || slices.Contains(api.calls, "ContainerStart") || len(ipt.Inputs) != 0 {
				t.Errorf("refused create still acted: %d containers, calls %q, firewall %q", len(api.containers), api.calls, ipt.Inputs)
			}
		})
	}
}

func TestContainerSetup(t *testing.T) {
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	w := testWant("inst", "alice", subnet)
	if _, err := d.Create(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	wantEnv := []string{
		"FOO=bar",
		"HTTPS_PROXY=http://10.215.0.2:3128", "HTTP_PROXY=http://10.215.0.2:3128",
		"NO_PROXY=localhost,127.0.0.1,::1",
		"TOKEN=" + secretValue,
		"http_proxy=http://10.215.0.2:3128", "https_proxy=http://10.215.0.2:3128",
		"no_proxy=localhost,127.0.0.1,::1",
	}
	if !slices.Equal(api.lastConfig.Env, wantEnv) {
		t.Errorf("env %q\nwant %q", api.lastConfig.Env, wantEnv)
	}
	for k, v := range api.lastConfig.Labels {
		if strings.Contains(k+v, secretValue) {
			t.Errorf("label %s carries a host variable's value", k)
		}
	}
	for k, v := range map[string]string{
		LabelDriver: Kind, LabelNetwork: "bottle-alice", LabelReach: "egress,dns",
		bottle.LabelBundleAddr: "10.215.0.2", bottle.LabelInstance: "inst", bottle.LabelRole: "guest",
	} {
		if api.lastConfig.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, api.lastConfig.Labels[k], v)
		}
	}
	hc := api.lastHost
	if hc.Privileged || !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Equal(hc.SecurityOpt, []string{"no-new-privileges"}) ||
		len(hc.Binds) != 0 || len(hc.Mounts) != 0 || len(hc.PortBindings) != 0 || len(hc.ExtraHosts) != 0 || hc.PublishAllPorts ||
		hc.RestartPolicy.Name != container.RestartPolicyDisabled || string(hc.NetworkMode) != "bottle-alice" ||
		!slices.Equal(hc.DNS, []string{"10.215.0.2"}) {
		t.Errorf("host config not hardened: %+v", hc)
	}
	// What the guest prints is stored on the host: rotated.
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "10m" || hc.LogConfig.Config["max-file"] != "3" {
		t.Errorf("log config %+v, want json-file rotated at 10m, 3 files", hc.LogConfig)
	}
	if hc.NanoCPUs != 2e9 || hc.Memory != 256<<20 || hc.MemorySwap != hc.Memory || hc.PidsLimit == nil || *hc.PidsLimit != DefaultPidsLimit {
		t.Errorf("resources %+v", hc.Resources)
	}
	eps := api.lastNet.EndpointsConfig
	if len(eps) != 1 || eps["bottle-alice"] == nil || eps["bottle-alice"].IPAMConfig.IPv4Address != "10.215.0.3" {
		t.Errorf("endpoints %+v", eps)
	}
}

func TestObserveIgnores(t *testing.T) {
	api, ipt := newFakeDocker(), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	// Labels copied from an image: managed-by without an instance.
	api.containers["img"] = &fakeContainer{id: "a", name: "img", labels: map[string]string{
		bottle.LabelManagedBy: bottle.ManagedByValue, bottle.LabelRole: "guest", LabelDriver: Kind,
	}}
	// A guest of another kind.
	api.containers["vm"] = &fakeContainer{id: "b", name: "vm", labels: bottle.OwnerLabels("inst", "bob", bottle.RoleGuest, "h")}
	// A new driver reads the firewall beside its first list (a new
	// process's pass has guests more often than not); once it has seen
	// none, it stops.
	for pass := 1; pass <= 3; pass++ {
		rs, err := d.Observe(context.Background())
		if err != nil || len(rs) != 0 {
			t.Errorf("pass %d: observed %+v, %v; want nothing", pass, rs, err)
		}
		// Exactly one: the first pass's read has ended when Observe
		// returns, and no later pass reads.
		if n := ipt.Count("iptables-save"); n != 1 {
			t.Errorf("pass %d: %d firewall reads in all, want the first pass's one", pass, n)
		}
	}
}

func TestObserveFailsWhole(t *testing.T) {
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	if _, err := d.Create(context.Background(), testWant("inst", "alice", subnet)); err != nil {
		t.Fatal(err)
	}
	ipt.FailOn = map[string]error{"iptables-save": errBoom}
	if rs, err := d.Observe(context.Background()); err == nil || rs != nil {
		t.Errorf("observe with an unreadable firewall: %v, %v", rs, err)
	}
}

// A guest a daemon crash left created with no address can get no rules,
// so no start may run it: Observe calls it broken (the reconciler then
// replaces it), and Delete removes it and its rules.
func TestObserveBrokenGuest(t *testing.T) {
	ctx := context.Background()
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	w := testWant("inst", "alice", subnet)
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	c := api.containers["bottle-alice-guest"]
	c.state, c.pid, c.addr = container.StateCreated, 0, ""
	api.net.halt(c.id)
	rs, err := d.Observe(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("Observe = %v, %v", rs, err)
	}
	if !strings.Contains(rs[0].Broken, "never got an address") || rs[0].Drift != "" {
		t.Errorf("half-made guest observed as broken %q, drift %q", rs[0].Broken, rs[0].Drift)
	}
	if err := d.Delete(ctx, rs[0]); err != nil {
		t.Fatal(err)
	}
	if len(api.containers) != 0 || len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))) != 0 {
		t.Errorf("left behind: %d containers, rules %q", len(api.containers), tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice")))
	}
	// A running guest is never called broken: its address is real.
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	if rs, err := d.Observe(ctx); err != nil || rs[0].Broken != "" {
		t.Errorf("running guest observed as broken: %+v, %v", rs, err)
	}
}

// A removal Docker is already doing (asked for by a reconciler killed
// mid-teardown) is waited for, and the rules still go: not a failure.
func TestDeleteWaitsForARemovalInProgress(t *testing.T) {
	ctx := context.Background()
	d, api, ipt, r := createdAlice(t)
	api.containers["bottle-alice-guest"].removing = true
	if err := d.Delete(ctx, r); err != nil {
		t.Fatalf("Delete during a removal in progress: %v", err)
	}
	if !slices.Contains(api.calls, "ContainerWait") || len(api.containers) != 0 || len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))) != 0 {
		t.Errorf("calls %q; left %d containers, rules %q", api.calls, len(api.containers), tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice")))
	}
}

// removeInstance deletes the rules of every guest of one instance, in one
// transaction, and no rule of another instance, even one whose name starts
// the same.
func TestRemoveInstanceRules(t *testing.T) {
	ctx := context.Background()
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	for i, w := range []bottle.Want{
		testWant("inst", "alice", subnet),
		testWant("inst", "bob", netip.MustParsePrefix("10.215.0.8/29")),
		testWant("ins", "carol", netip.MustParsePrefix("10.215.0.16/29")),
	} {
		w.Name = fmt.Sprintf("guest-%d", i)
		if _, err := d.Create(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	want := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))) + len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "bob")))
	carol := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("ins", "carol")))
	restores := ipt.Count("iptables-restore")
	removed, err := d.fw.removeInstance(ctx, "inst")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != want || want == 0 || !strings.HasPrefix(removed[0], "-A "+Chain+" ") {
		t.Errorf("removed %q, want the %d rules of instance inst", removed, want)
	}
	if n := ipt.Count("iptables-restore") - restores; n != 1 {
		t.Errorf("%d transactions, want 1", n)
	}
	if left := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))) + len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "bob"))); left != 0 {
		t.Errorf("%d rules of instance inst left", left)
	}
	if n := len(tagged(ipt.Table(hostfw.IPv4), ruleComment("ins", "carol"))); n != carol || n == 0 {
		t.Errorf("instance ins has %d rules, want its %d untouched", n, carol)
	}
}

// A Docker daemon killed while it started a guest leaves containerd's task
// behind, and every later start fails with "task ...: already exists". No
// start can ever bring that guest up, so Start removes it (and its rules)
// and says so: the next pass creates it afresh instead of failing forever.
func TestStartOfAGuestWithAStaleTaskRemovesIt(t *testing.T) {
	ctx := context.Background()
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	w := testWant("inst", "alice", subnet)
	got, err := d.Create(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	c := api.containers["bottle-alice-guest"]
	c.state, c.pid = container.StateCreated, 0
	api.net.halt(c.id)
	api.failOn = map[string]error{"ContainerStart": errors.New("Error response from daemon: task " + c.id + ": already exists")}
	err = d.Start(ctx, got)
	if err == nil || !strings.Contains(err.Error(), "stale task") || !strings.Contains(err.Error(), "next pass creates it again") {
		t.Fatalf("start: %v, want an error saying the guest was removed for its stale task", err)
	}
	if len(api.containers) != 0 || len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))) != 0 {
		t.Errorf("left: %d containers, rules %q", len(api.containers), tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice")))
	}

	// Any other start failure leaves the guest alone.
	api.failOn = nil
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	c = api.containers["bottle-alice-guest"]
	c.state, c.pid = container.StateExited, 0
	api.net.halt(c.id)
	api.failOn = map[string]error{"ContainerStart": errors.New("Error response from daemon: no space left on device")}
	if err := d.Start(ctx, got); err == nil || strings.Contains(err.Error(), "stale task") {
		t.Errorf("start: %v", err)
	}
	if len(api.containers) != 1 {
		t.Errorf("a guest whose start failed otherwise was removed")
	}
}

// Deleting a guest whose rules are as installed deletes them in one
// iptables-restore, with no iptables-save; when they drifted (one missing,
// one added by hand with the bottle's tag), it falls back to reading the
// table and deletes every rule tagged for the bottle.
func TestDeleteRemovesRules(t *testing.T) {
	tests := []struct {
		name      string
		drift     bool
		wantSaves int
	}{
		{"as installed: no read", false, 0},
		{"drifted: read, then every tagged rule", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d, _, ipt, r := createdAlice(t)
			if tt.drift {
				tb := ipt.Table(hostfw.IPv4)
				rules := tagged(tb, ruleComment("inst", "alice"))
				extra := slices.Concat([]string{"-s", "10.99.0.1/32"}, []string{"-m", "comment", "--comment", ruleComment("inst", "alice")}, []string{"-j", "ACCEPT"})
				tx := slices.Concat(hostfw.DeleteTx(Chain, rules[:1]), []string{"-A " + Chain + " " + hostfw.JoinArgs(extra)})
				if err := (hostfw.Firewall{Run: ipt, Family: hostfw.IPv4}).Apply(ctx, tx); err != nil {
					t.Fatal(err)
				}
			}
			saves := ipt.Count("iptables-save")
			if err := d.Delete(ctx, r); err != nil {
				t.Fatal(err)
			}
			if got := ipt.Count("iptables-save") - saves; got != tt.wantSaves {
				t.Errorf("%d iptables-save, want %d", got, tt.wantSaves)
			}
			if left := tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice")); len(left) != 0 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

// count is how many times call is in log.
func count(log []string, call string) int {
	n := 0
	for _, c := range log {
		if c == call {
			n++
		}
	}
	return n
}

// meeting lets two calls each wait, a while, for the other to begin: both
// meet only if they run at once.
type meeting struct {
	inspect, save chan struct{}
	met           atomic.Int32
}

func (m *meeting) arrive(mine, theirs chan struct{}) {
	close(mine)
	select {
	case <-theirs:
		m.met.Add(1)
	case <-time.After(2 * time.Second):
	}
}

type meetingDocker struct {
	*fakeDocker
	m *meeting
}

func (d meetingDocker) ContainerInspect(ctx context.Context, ref string) (container.InspectResponse, error) {
	d.m.arrive(d.m.inspect, d.m.save)
	return d.fakeDocker.ContainerInspect(ctx, ref)
}

type meetingRunner struct {
	*hostfwtest.IPTables
	m *meeting
}

func (r meetingRunner) Run(ctx context.Context, stdin, name string, args ...string) ([]byte, error) {
	if name == "iptables-save" {
		r.m.arrive(r.m.save, r.m.inspect)
	}
	return r.IPTables.Run(ctx, stdin, name, args...)
}

// A thaw reads the host firewall while Docker answers about the guest (at
// a few hundred bottles each takes tens of milliseconds), and thaws the
// guest only after both.
func TestThawReadsFirewallBesideInspect(t *testing.T) {
	ctx := context.Background()
	_, api, ipt, r := createdAlice(t)
	m := &meeting{inspect: make(chan struct{}), save: make(chan struct{})}
	d, err := newDriver(meetingDocker{api, m}, Options{}, testr.New(t), meetingRunner{ipt, m})
	if err != nil {
		t.Fatal(err)
	}
	d.net = api.net
	if err := api.ContainerPause(ctx, r.Name); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, r); err != nil {
		t.Fatal(err)
	}
	if m.met.Load() != 2 {
		t.Errorf("the thaw's inspect and firewall read did not run at once")
	}
	if c := api.containers[r.Name]; c.state != container.StateRunning {
		t.Errorf("guest state after the thaw: %s, want running", c.state)
	}
	if len(tagged(ipt.Table(hostfw.IPv4), ruleComment("inst", "alice"))) == 0 {
		t.Error("no rules after the thaw")
	}
}
