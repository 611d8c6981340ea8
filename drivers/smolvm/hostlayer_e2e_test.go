package smolvm

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
)

// The host layer for real: the emulator's VMM stand-in starts in the
// bottle's cgroup, and `machine exec` runs its command there, where a real
// VMM's gateway makes its connections. From there the host's loopback,
// 0.0.0.0, [::1], the metadata address and another bottle's bundle must be
// out of reach and the bottle's own bundle in reach; with the rules taken
// away the same check must fail, a pass must see it, and Repair must put
// the rules back. Needs root, cgroup2, iptables' cgroup match and Debian's
// busybox-static; it skips without them (fails under BOTTLE_REQUIRE_DOCKER=1,
// as CI runs it).
func TestHostLayerKeepsTheVMMToItsBundle(t *testing.T) {
	requireHostLayer(t)
	ctx := context.Background()
	b := newBackend(t, true)
	b.hostLayer = true
	d := b.driver(t, Options{})
	if d.layer == nil || d.layer.off != "" {
		t.Fatalf("host layer off: %+v", d.layer)
	}

	// Loopback stands in for every address: the rules match addresses,
	// not interfaces, and nothing else on the host binds 127.0.0.2-3.
	port := strconv.Itoa(bundle.ProxyPort)
	own := listen(t, "tcp4", net.JoinHostPort("127.0.0.2", port))
	targets := map[string]string{
		"host loopback":           listen(t, "tcp4", "127.0.0.1:0"),
		"host 0.0.0.0":            listen(t, "tcp4", "0.0.0.0:0"),
		"host [::1]":              listen(t, "tcp6", "[::1]:0"),
		"another bottle's bundle": listen(t, "tcp4", net.JoinHostPort("127.0.0.3", port)),
		"metadata":                "169.254.169.254:80",
	}

	w := b.want(t)
	w.BundleAddr = netip.MustParseAddr("127.0.0.2")
	w.Labels[bottle.LabelBundleAddr] = "127.0.0.2"
	w.Guest.AllowCIDRs = nil
	s, err := layerOf(machineLabels(w))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the machine's own cleanup
		if err := d.layer.remove(context.Background(), s); err != nil {
			t.Error(err)
		}
		if err := d.Cleanup(context.Background(), s.Instance); err != nil {
			t.Error(err)
		}
	})
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	reach := func(addr string) bool {
		_, _, code := b.smolvm(t, "machine", "exec", "--name", w.Name, "--", "/bin/busybox", "nc", "-w", "2", hostOf(addr), portOf(addr))
		return code == 0
	}
	if !reach(own) {
		t.Fatalf("the bottle's own bundle %s is out of reach", own)
	}
	for what, addr := range targets {
		if reach(addr) {
			t.Errorf("%s (%s) is in reach of the VMM", what, addr)
		}
	}

	// Take the layer away: the same check must fail, and a pass must see it.
	for _, f := range families {
		fw := hostfw.Firewall{Run: hostfw.ExecRunner{}, Family: f}
		tab, err := fw.ReadFresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Apply(ctx, hostfw.DeleteTx(VMMChain, tab.Tagged(VMMChain, s.comment()))); err != nil {
			t.Fatal(err)
		}
	}
	if !reach(targets["host loopback"]) {
		t.Fatal("with the rules gone the host's loopback is still out of reach: the check proves nothing")
	}
	rs, err := d.Observe(bottle.WithShared(ctx))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := find(rs, w.Name)
	if !ok || !strings.Contains(r.Drift, "host layer rules missing") {
		t.Fatalf("a pass did not see the rules gone: %+v", r)
	}
	if err := d.Repair(ctx, r); err != nil {
		t.Fatal(err)
	}
	if reach(targets["host loopback"]) || !reach(own) {
		t.Error("after Repair the layer is not back")
	}

	if err := d.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.layer.dir(s)); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after delete: %v", d.layer.dir(s), err)
	}
}

// requireHostLayer skips unless the host can run the layer for real.
func requireHostLayer(t *testing.T) {
	t.Helper()
	why := ""
	switch l := newHostLayer(hostfw.ExecRunner{}, "/proc/self/mountinfo", "/proc"); {
	case os.Geteuid() != 0:
		why = "needs root (cgroups and iptables)"
	case l.off != "":
		why = l.off
	case emulatorBuildErr != nil:
		why = emulatorBuildErr.Error()
	}
	if why == "" {
		if _, err := os.Stat("/bin/busybox"); err != nil {
			why = "needs Debian's busybox-static for nc"
		} else if out, err := exec.Command("iptables", "-m", "cgroup", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--path") {
			why = "iptables has no cgroup match"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv(dockertest.RequireEnv) == "1" {
		t.Fatalf("host layer test cannot run: %s", why)
	}
	t.Skip("host layer test: " + why)
}

// listen serves addr until the test ends and returns where it listens.
func listen(t *testing.T, network, addr string) string {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(time.Second))
			c.Close()
		}
	}()
	return l.Addr().String()
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func find(rs []bottle.Resource, name string) (bottle.Resource, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return bottle.Resource{}, false
}
