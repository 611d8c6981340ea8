package dockerguest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw/hostfwtest"
)

// testPool is where the tests' bottle subnets come from: apart from the
// reconciler's and dockernet's 10.213.0.0/16.
var testPool = netip.MustParsePrefix("10.215.0.0/16")

// hostToken is what the host listener answers; seeing it in a guest means
// the guest reached the host.
const hostToken = "HOST-CANARY-7d1f"

func TestGuestOnDocker(t *testing.T) {
	cli := requireDocker(t)
	inst := newInstance(t, cli)
	img := buildTestImage(t, cli, inst)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bottleName := "b" + inst[len(inst)-6:]
	netName, subnet := testNetwork(ctx, t, cli, inst, bottleName)
	bundleAddr, guestAddr := bottle.BundleAddr(subnet), bottle.GuestAddr(subnet)
	neighbour := guestAddr.Next()
	// The stand-in bundle answers on the proxy port and on one the guest
	// must not reach; a neighbour on the same bridge answers on the proxy
	// port at another address.
	standIn(ctx, t, cli, inst, img, netName, "bundle-"+bottleName, bundleAddr)
	standIn(ctx, t, cli, inst, img, netName, "neighbour-"+bottleName, neighbour)
	hostPort := hostListener(t)

	d, err := New(cli, Options{}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	w := testWant(inst, bottleName, subnet)
	w.Guest.Image, w.Network, w.Name = img, netName, d.NameFor(bottleName)
	w.Guest.Daemons = []string{"egress"} // the stand-in runs no resolver

	r, err := d.Create(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bottle.StateRunning || r.Addr != guestAddr {
		t.Errorf("created %+v", r)
	}
	// Observe finds a process of the guest from its cgroup, without
	// Docker, and it is in the network namespace of the process Docker
	// names.
	c, err := cli.ContainerInspect(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	netns := func(pid int) string {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			t.Fatal(err)
		}
		return link
	}
	if pid, err := d.net.netPID(r.ID); err != nil || netns(pid) != netns(c.State.Pid) {
		t.Errorf("netPID from the cgroup = %d, %v; not in the network namespace of Docker's pid %d", pid, err, c.State.Pid)
	}
	got := observeOne(ctx, t, d, inst, w.Name)
	if got.State != bottle.StateRunning || got.Drift != "" || got.Bottle != bottleName || got.Hash != "h-"+bottleName ||
		got.Labels[bottle.LabelBundleAddr] != bundleAddr.String() || got.Addr != guestAddr {
		t.Errorf("observed %+v", got)
	}

	// Blocked: the host through the bridge gateway, the host's other
	// addresses, the bundle's other port, and a neighbour.
	blocked := []netip.AddrPort{
		netip.AddrPortFrom(bottle.Gateway(subnet), hostPort),
		netip.AddrPortFrom(bundleAddr, 8080),
		netip.AddrPortFrom(neighbour, 3128),
	}
	for _, a := range hostAddrs(t) {
		blocked = append(blocked, netip.AddrPortFrom(a, hostPort))
	}
	// Off the bottle subnet: nothing answers there, so only a refusal or a
	// missing route makes the block fast.
	blocked = append(blocked, netip.MustParseAddrPort("192.0.2.77:80"), netip.MustParseAddrPort("1.1.1.1:443"))
	narrowed := bundleAddr.String() + " dev eth0 scope link"
	probes := func(stage string, skip ...netip.AddrPort) {
		t.Helper()
		if rs := guestRoutes(ctx, t, cli, got.ID); rs != narrowed {
			t.Errorf("%s: guest routes %q, want only %q", stage, rs, narrowed)
		}
		out, ok, _ := probe(ctx, t, cli, got.ID, netip.AddrPortFrom(bundleAddr, 3128))
		if !ok || !strings.Contains(out, "ok") {
			t.Errorf("%s: guest cannot reach its bundle's proxy: %q", stage, out)
		}
		for _, a := range blocked {
			if slices.Contains(skip, a) {
				continue
			}
			out, ok, why := probe(ctx, t, cli, got.ID, a)
			if ok || out != "" {
				t.Errorf("%s: guest reached %s: %q", stage, a, out)
			}
			// Judged by how nc failed, not by the clock, which a loaded
			// host stretches: a refusal or a missing route, never nc's
			// own timeout.
			if !strings.Contains(why, "Connection refused") && !strings.Contains(why, "Network is unreachable") {
				t.Errorf("%s: probe of %s failed with %q: a block must be a fast refusal", stage, a, why)
			}
			if t.Failed() {
				t.Logf("%s: the test's rules now: %q", stage, testRules(t, inst))
			}
		}
	}
	probes("after create")

	// Rules gone behind the driver's back (only this test's: the chain is
	// shared with anyone else on the host).
	hostfwtest.DeleteHostRules(t, testRules(t, inst))
	got = observeOne(ctx, t, d, inst, w.Name)
	if got.Drift != "host firewall rules missing" {
		t.Errorf("drift %q with the rules gone", got.Drift)
	}
	// The narrowed routes alone still block everything but the bundle's
	// other ports (the bundle listens only on its own), at once.
	probes("routes only", blocked[1])
	// A restart behind the driver's back gives the guest Docker's routes
	// again. Without its rules and with those routes the guest does reach
	// the host: the layers are what block it, so the probes can fail.
	restart(ctx, t, cli, got.ID)
	if rs := guestRoutes(ctx, t, cli, got.ID); rs == narrowed {
		t.Fatalf("routes %q after a restart: the test cannot undo the route layer", rs)
	}
	if out, _, _ := probe(ctx, t, cli, got.ID, blocked[0]); !strings.Contains(out, hostToken) {
		t.Errorf("with the rules gone the guest still did not reach the host (%q): the probe proves nothing", out)
	}
	for i, a := range blocked[1:] {
		out, _, _ := probe(ctx, t, cli, got.ID, a)
		switch {
		case out != "":
			t.Logf("with the rules gone the guest reaches %s", a)
		case i < 2:
			// Same bridge: only the host's rules (with br_netfilter) stop it.
			t.Errorf("with the rules gone the guest still did not reach %s: the probe proves nothing", a)
		}
	}
	if err := d.Repair(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = observeOne(ctx, t, d, inst, w.Name)
	if got.Drift != "" {
		t.Errorf("drift %q after repair", got.Drift)
	}
	probes("after repair")

	// The routes alone drift: Observe says so and Repair narrows them.
	restart(ctx, t, cli, got.ID)
	got = observeOne(ctx, t, d, inst, w.Name)
	if !strings.HasPrefix(got.Drift, "guest routes beyond its bundle: 0.0.0.0/0 via "+bottle.Gateway(subnet).String()) {
		t.Errorf("drift %q after a restart behind the driver's back", got.Drift)
	}
	if err := d.Repair(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got = observeOne(ctx, t, d, inst, w.Name); got.Drift != "" {
		t.Errorf("drift %q after the routes were repaired", got.Drift)
	}
	probes("after route repair")

	if err := d.Stop(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got = observeOne(ctx, t, d, inst, w.Name); got.State != bottle.StateStopped || got.Detail != "paused" || got.Addr != guestAddr {
		t.Errorf("after stop: %+v", got)
	}
	if c, err := cli.ContainerInspect(ctx, got.ID); err != nil || !c.State.Paused {
		t.Errorf("after Stop the guest is not frozen: %v", err)
	}
	if err := d.Start(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got = observeOne(ctx, t, d, inst, w.Name); got.State != bottle.StateRunning || got.Drift != "" {
		t.Errorf("after thaw: %+v", got)
	}
	probes("after thaw")

	// A guest that exited is started anew, in a fresh namespace whose
	// routes Start narrows.
	secs := 1
	if err := cli.ContainerStop(ctx, got.ID, container.StopOptions{Timeout: &secs}); err != nil {
		t.Fatal(err)
	}
	if got = observeOne(ctx, t, d, inst, w.Name); got.State != bottle.StateStopped {
		t.Errorf("after a stop by hand: %+v", got)
	}
	if err := d.Start(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got = observeOne(ctx, t, d, inst, w.Name); got.State != bottle.StateRunning || got.Drift != "" {
		t.Errorf("after start: %+v", got)
	}
	probes("after restart")

	checkHardened(ctx, t, cli, got.ID, netName, bundleAddr)

	t.Run("foreign container of the same name", func(t *testing.T) {
		other := "f" + bottleName
		name := d.NameFor(other)
		_, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: map[string]string{testLabel: inst}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		w2 := testWant(inst, other, subnet)
		w2.Guest.Image, w2.Network, w2.Name = img, netName, name
		_, err = d.Create(ctx, w2)
		if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "not managed by bottle-reconcile") {
			t.Errorf("create over a foreign container: %v", err)
		}
		if rs := testRules(t, inst); slices.ContainsFunc(rs, func(r string) bool { return strings.Contains(r, " "+other+`"`) }) {
			t.Errorf("refused create installed rules: %q", rs)
		}
		if err := d.Delete(ctx, bottle.Resource{Name: name}); !cerrdefs.IsConflict(err) {
			t.Errorf("delete of a foreign container: %v", err)
		}
	})

	if err := d.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(ctx, got.ID); !cerrdefs.IsNotFound(err) {
		t.Errorf("guest still there after delete: %v", err)
	}
	if rs := testRules(t, inst); len(rs) != 0 {
		t.Errorf("rules left after delete: %q", rs)
	}
	if err := d.Delete(ctx, got); err != nil {
		t.Errorf("delete of a deleted guest: %v", err)
	}
}

// observeOne observes and returns the guest called name of instance inst.
func observeOne(ctx context.Context, t *testing.T, d *Driver, inst, name string) bottle.Resource {
	t.Helper()
	rs, err := d.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Instance == inst && r.Name == name {
			return r
		}
	}
	t.Fatalf("guest %s not observed", name)
	return bottle.Resource{}
}

// testNetwork makes an internal /29 network from testPool, retrying on a
// subnet someone else has.
func testNetwork(ctx context.Context, t *testing.T, cli *client.Client, inst, bottleName string) (string, netip.Prefix) {
	t.Helper()
	name := "bottle-" + bottleName
	no := false
	for range 20 {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<13))
		base := testPool.Addr().As4()
		base[2], base[3] = byte(n.Int64()>>5), byte(n.Int64()&31)<<3
		subnet := netip.PrefixFrom(netip.AddrFrom4(base), 29)
		_, err := cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge", Internal: true, EnableIPv6: &no,
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{
				Subnet: subnet.String(), Gateway: bottle.Gateway(subnet).String(),
			}}},
			Labels: map[string]string{testLabel: inst},
		})
		if err == nil {
			return name, subnet
		}
		if !strings.Contains(err.Error(), "overlaps") {
			t.Fatalf("create test network: %v", err)
		}
	}
	t.Fatal("no free test subnet")
	return "", netip.Prefix{}
}

// standIn runs a container at addr answering "ok" on 3128 and "no" on 8080.
func standIn(ctx context.Context, t *testing.T, cli *client.Client, inst, img, net, name string, addr netip.Addr) {
	t.Helper()
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{Image: img, Labels: map[string]string{testLabel: inst},
			Cmd: []string{"sh", "-c", "nc -ll -p 3128 -e echo ok & nc -ll -p 8080 -e echo no & wait"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(net)},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			net: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: addr.String()}},
		}}, nil, name+"-"+inst)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
}

// hostListener listens on every host address and answers hostToken.
func hostListener(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, hostToken)
			c.Close()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// hostAddrs lists the host's own stable IPv4 addresses: docker0 and the
// LAN address. Other bridges are left out: other tests make and remove
// them while this one runs.
func hostAddrs(t *testing.T) []netip.Addr {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, "br-") || strings.HasPrefix(ifc.Name, "veth") || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				out = append(out, p.Addr())
			}
		}
	}
	return out
}

// probe connects from inside container id to a and returns what came back,
// whether nc succeeded, and what nc said on stderr.
func probe(ctx context.Context, t *testing.T, cli *client.Client, id string, a netip.AddrPort) (string, bool, string) {
	t.Helper()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{
		// timeout: nc -w bounds only the connect, and a probe must never hang.
		Cmd:          []string{"timeout", "5", "nc", "-w", "3", a.Addr().String(), strconv.Itoa(int(a.Port()))},
		AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		t.Fatalf("probe %s: %v", a, err)
	}
	start := time.Now()
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("probe %s: %v", a, err)
	}
	defer att.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		t.Fatalf("probe %s: %v", a, err)
	}
	took := time.Since(start)
	insp, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatalf("probe %s: %v", a, err)
	}
	t.Logf("probe %s: exit %d in %s: %q %q", a, insp.ExitCode, took.Round(time.Millisecond), out.String(), strings.TrimSpace(errOut.String()))
	return out.String(), insp.ExitCode == 0, errOut.String()
}

// checkHardened inspects the guest's runtime setup.
func checkHardened(ctx context.Context, t *testing.T, cli *client.Client, id, net string, bundleAddr netip.Addr) {
	t.Helper()
	c, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.HostConfig
	switch {
	case hc.Privileged:
		t.Error("privileged")
	case !slices.Equal(hc.CapDrop, []string{"ALL"}) || len(hc.CapAdd) != 0:
		t.Errorf("capabilities: drop %q add %q", hc.CapDrop, hc.CapAdd)
	case !slices.Contains(hc.SecurityOpt, "no-new-privileges"):
		t.Errorf("security options %q", hc.SecurityOpt)
	case len(c.Mounts) != 0 || len(hc.Binds) != 0:
		t.Errorf("mounts %+v binds %q", c.Mounts, hc.Binds)
	case len(hc.PortBindings) != 0 || hc.PublishAllPorts:
		t.Errorf("ports %+v", hc.PortBindings)
	case len(hc.ExtraHosts) != 0:
		t.Errorf("extra hosts %q", hc.ExtraHosts)
	case hc.RestartPolicy.Name != container.RestartPolicyDisabled:
		t.Errorf("restart policy %q", hc.RestartPolicy.Name)
	case !slices.Equal(hc.DNS, []string{bundleAddr.String()}):
		t.Errorf("dns %q", hc.DNS)
	case hc.NanoCPUs != 2e9 || hc.Memory != 256<<20 || hc.PidsLimit == nil || *hc.PidsLimit != DefaultPidsLimit:
		t.Errorf("resources: cpus %d memory %d pids %v", hc.NanoCPUs, hc.Memory, hc.PidsLimit)
	}
	if len(c.NetworkSettings.Networks) != 1 || c.NetworkSettings.Networks[net] == nil {
		t.Errorf("networks %v, want only %s", c.NetworkSettings.Networks, net)
	}
	if hc.Sysctls["net.ipv6.conf.all.disable_ipv6"] != "1" {
		t.Errorf("sysctls %v", hc.Sysctls)
	}
	if !slices.Contains(c.Config.Env, "TOKEN="+secretValue) || !slices.Contains(c.Config.Env, "FOO=bar") {
		t.Error("spec env or host variable not passed")
	}
	if c.Config.User != "" || c.HostConfig.ReadonlyRootfs {
		t.Logf("user %q, read-only root %v", c.Config.User, c.HostConfig.ReadonlyRootfs)
	}
}

// guestRoutes returns the guest's IPv4 routes as its own `ip route` prints
// them, one line.
func guestRoutes(ctx context.Context, t *testing.T, cli *client.Client, id string) string {
	t.Helper()
	out, _ := guestExec(ctx, t, cli, id, "ip", "-4", "route")
	return strings.Join(strings.Fields(out), " ")
}

// guestExec runs cmd in the guest and returns its stdout and stderr, and
// its exit code.
func guestExec(ctx context.Context, t *testing.T, cli *client.Client, id string, cmd ...string) (string, int) {
	t.Helper()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		t.Fatal(err)
	}
	insp, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	return out.String() + errOut.String(), insp.ExitCode
}

// restart restarts the guest behind the driver's back: a new network
// namespace, with Docker's routes.
func restart(ctx context.Context, t *testing.T, cli *client.Client, id string) {
	t.Helper()
	zero := 0
	if err := cli.ContainerRestart(ctx, id, container.StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
}
