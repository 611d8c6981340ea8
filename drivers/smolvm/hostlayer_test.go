package smolvm

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/cgroup2"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw/hostfwtest"
)

// fakeLayer is a host layer on an in-memory iptables, a temp dir for the
// cgroup2 root and a temp /proc. Its iptables is reachable through
// layerIPTables.
func fakeLayer(t *testing.T) *hostLayer {
	t.Helper()
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	root := filepath.Join(dir, "cgroup")
	line := "30 23 0:26 / " + root + " rw,nosuid - cgroup2 cgroup2 rw\n"
	if err := os.WriteFile(mi, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	ipt := hostfwtest.New(hostfwtest.DockerOnly)
	l := newHostLayer(ipt, mi, filepath.Join(dir, "proc"))
	if l.off != "" {
		t.Fatal(l.off)
	}
	return &l
}

func layerIPTables(l *hostLayer) *hostfwtest.IPTables {
	return l.fw[hostfw.IPv4].Run.(*hostfwtest.IPTables)
}

// fakeVMM makes pid a process of the fake /proc whose cgroup2 path is cg.
func fakeVMM(t *testing.T, l *hostLayer, pid int, cg string) {
	t.Helper()
	dir := filepath.Join(l.proc, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte("4:memory:/x\n0::"+cg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCgroup2Root(t *testing.T) {
	tests := []struct{ name, mountinfo, want string }{
		{"hybrid", "25 24 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs ro\n33 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified"},
		{"unified", "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"a bind of a sub-cgroup is not the root", "40 23 0:26 /sub /mnt/x rw - cgroup2 cgroup2 rw\n", ""},
		{"v1 only", "34 25 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "mountinfo")
			if err := os.WriteFile(p, []byte(tt.mountinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := cgroup2.Root(p)
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// The rules let the cgroup reach its bundle's daemons and allowCIDRs, and
// refuse everything else, in both families; each rule carries the cgroup.
func TestLayerRules(t *testing.T) {
	s := layerSpec{Instance: "inst", Bottle: "alice", Bundle: netip.MustParseAddr("10.77.0.2"), Egress: true, DNS: true,
		Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/64")}}
	join := func(rs [][]string) string {
		var out []string
		for _, r := range rs {
			out = append(out, hostfw.JoinArgs(r))
		}
		return strings.Join(out, "\n")
	}
	m := `-m cgroup --path bottle-reconcile/inst/alice -m comment --comment "bottle-reconcile inst alice"`
	want4 := strings.Join([]string{
		"-d 10.77.0.2/32 -p tcp -m tcp --dport 3128 " + m + " -j RETURN",
		"-d 10.77.0.2/32 -p udp -m udp --dport 53 " + m + " -j RETURN",
		"-d 10.77.0.2/32 -p tcp -m tcp --dport 53 " + m + " -j RETURN",
		"-d 203.0.113.0/24 " + m + " -j RETURN",
		"-p tcp " + m + " -j REJECT --reject-with tcp-reset",
		m + " -j REJECT --reject-with icmp-admin-prohibited",
	}, "\n")
	if got := join(s.rules(hostfw.IPv4)); got != want4 {
		t.Errorf("IPv4 rules:\n%s\nwant:\n%s", got, want4)
	}
	want6 := strings.Join([]string{
		"-d 2001:db8::/64 " + m + " -j RETURN",
		"-p tcp " + m + " -j REJECT --reject-with tcp-reset",
		m + " -j REJECT --reject-with icmp6-adm-prohibited",
	}, "\n")
	if got := join(s.rules(hostfw.IPv6)); got != want6 {
		t.Errorf("IPv6 rules:\n%s\nwant:\n%s", got, want6)
	}
	s.Egress, s.DNS, s.Allow = false, false, nil
	if got := s.rules(hostfw.IPv4); len(got) != 2 || got[0][len(got[0])-3] != "REJECT" {
		t.Errorf("no daemons, no allowCIDRs: %q, want only the refusals", got)
	}
}

func TestLayerOf(t *testing.T) {
	w := testWant()
	labels := machineLabels(w)
	s, err := layerOf(labels)
	if err != nil {
		t.Fatal(err)
	}
	if s.Instance != "host-a" || s.Bottle != "alice" || s.Bundle != w.BundleAddr || !s.Egress || !s.DNS ||
		!slices.Equal(s.Allow, []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}) {
		t.Errorf("layerOf = %+v", s)
	}
	for _, tt := range []struct{ name, key, val string }{
		{"no bundle address", bottle.LabelBundleAddr, ""},
		{"an IPv6 bundle", bottle.LabelBundleAddr, "fd00::2"},
		{"a bottle name no cgroup may have", bottle.LabelBottle, "../x"},
		{"a bad allowCIDR", labelAllow, "10.0.0.0/33"},
	} {
		l := machineLabels(w)
		l[tt.key] = tt.val
		if _, err := layerOf(l); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// Create makes the cgroup and installs the rules before smolvm starts, and
// starts smolvm in that cgroup; Delete takes both away.
func TestCreateStartsInsideTheHostLayer(t *testing.T) {
	ctx := context.Background()
	f := &fakeRunner{}
	d := newFakeDriver(t, f, Options{})
	ipt := layerIPTables(d.layer)
	w := testWant()
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	s, _ := layerOf(machineLabels(w))
	start, ok := f.find("machine start")
	if !ok || start.cgroup != d.layer.dir(s) {
		t.Fatalf("start ran in cgroup %q, want %q", start.cgroup, d.layer.dir(s))
	}
	if _, err := os.Stat(start.cgroup); err != nil {
		t.Errorf("cgroup not made: %v", err)
	}
	for _, fam := range families {
		tab := ipt.Table(fam)
		if !hostfw.First(tab.Rules[chainOutput], vmmJump) {
			t.Errorf("%s: OUTPUT does not jump to %s first: %q", fam, VMMChain, tab.Rules[chainOutput])
		}
		if got := tab.Tagged(VMMChain, s.comment()); !slices.EqualFunc(got, s.rules(fam), slices.Equal) {
			t.Errorf("%s rules %q, want %q", fam, got, s.rules(fam))
		}
	}
	if err := d.Delete(ctx, bottle.Resource{Name: w.Name, Labels: machineLabels(w)}); err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if got := ipt.Table(fam).Tagged(VMMChain, s.comment()); len(got) != 0 {
			t.Errorf("%s rules left after delete: %q", fam, got)
		}
	}
	if _, err := os.Stat(start.cgroup); !os.IsNotExist(err) {
		t.Errorf("cgroup left after delete: %v", err)
	}
}

// No smolvm start when the rules cannot go in: fail closed.
func TestStartRefusedWithoutTheHostLayer(t *testing.T) {
	f := &fakeRunner{}
	d := newFakeDriver(t, f, Options{})
	layerIPTables(d.layer).FailOn = map[string]error{"ip6tables-restore": os.ErrPermission}
	_, err := d.Create(context.Background(), testWant())
	if err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("err = %v, want created but not started", err)
	}
	if _, started := f.find("machine start"); started {
		t.Error("smolvm was started without its host layer")
	}

	off := &hostLayer{off: "no cgroup2 hierarchy is mounted"}
	d.layer = off
	err = d.Start(context.Background(), bottle.Resource{Name: "bottle-alice", Labels: machineLabels(testWant())})
	if err == nil || !strings.Contains(err.Error(), "--smolvm-host-layer=false") {
		t.Errorf("start on a host without cgroup2: %v, want an error that says how to opt out", err)
	}
}

// A pass sees every way the layer can go missing, and Repair puts it back.
func TestLayerDriftAndRepair(t *testing.T) {
	ctx := context.Background()
	w := testWant()
	labels := machineLabels(w)
	s, _ := layerOf(labels)
	listing := func(pid int) string {
		return `[{"name":"bottle-alice","state":"running","pid":` + strconv.Itoa(pid) + `,"labels":` + jsonLabels(labels) + `}]`
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, d *Driver)
		want   string
	}{
		{"in place", func(*testing.T, *Driver) {}, ""},
		{"rules flushed", func(t *testing.T, d *Driver) {
			layerIPTables(d.layer).DeleteTagged(hostfw.IPv4, VMMChain, s.comment(), func(int) bool { return false })
		}, "host layer rules missing (iptables)"},
		{"one IPv6 rule gone", func(t *testing.T, d *Driver) {
			layerIPTables(d.layer).DeleteTagged(hostfw.IPv6, VMMChain, s.comment(), func(i int) bool { return i != 0 })
		}, "host layer rules incomplete (ip6tables)"},
		{"jump gone", func(t *testing.T, d *Driver) {
			layerIPTables(d.layer).DeleteTagged(hostfw.IPv4, chainOutput, "", func(int) bool { return false })
		}, "host layer jump to BOTTLE-VMM is not first in OUTPUT (iptables)"},
		{"VMM outside its cgroup", func(t *testing.T, d *Driver) { fakeVMM(t, d.layer, 4242, "/user.slice") },
			"VMM (pid 4242) runs outside its host layer cgroup bottle-reconcile/host-a/alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{answers: map[string]fakeAnswer{"machine ls": {stdout: listing(4242)}}}
			d := newFakeDriver(t, f, Options{})
			if _, err := d.layer.prepare(ctx, s); err != nil {
				t.Fatal(err)
			}
			fakeVMM(t, d.layer, 4242, "/"+s.cgroup())
			tt.break_(t, d)
			// A pass over the bottle alone sees what a whole one sees; it
			// runs iptables-save only when the ruleset changed since the
			// last read.
			ipt := layerIPTables(d.layer)
			observe := func(ctx context.Context, want string, wantSaves int, why string) []bottle.Resource {
				t.Helper()
				saves := ipt.Count("iptables-save") + ipt.Count("ip6tables-save")
				rs, err := d.Observe(bottle.WithShared(ctx))
				if err != nil || len(rs) != 1 {
					t.Fatalf("%s: observe: %v %v", why, rs, err)
				}
				if n := ipt.Count("iptables-save") + ipt.Count("ip6tables-save") - saves; wantSaves >= 0 && n != wantSaves {
					t.Errorf("%s: iptables-save ran %d times, want %d", why, n, wantSaves)
				}
				if rs[0].Drift != want {
					t.Errorf("%s: drift %q, want %q", why, rs[0].Drift, want)
				}
				return rs
			}
			scope := func(ctx context.Context) context.Context { return bottle.WithScope(ctx, "alice") }
			observe(scope(ctx), tt.want, -1, "scoped, the ruleset changed since the last read")
			observe(scope(ctx), tt.want, 0, "scoped, nothing changed since")
			rs := observe(ctx, tt.want, 0, "whole, nothing changed since")
			if err := d.Repair(ctx, rs[0]); err != nil {
				t.Fatal(err)
			}
			procs, _ := os.ReadFile(filepath.Join(d.layer.dir(s), "cgroup.procs"))
			if tt.name == "VMM outside its cgroup" && string(procs) != "4242" {
				t.Errorf("repair wrote %q to cgroup.procs, want the VMM's pid", procs)
			}
			fakeVMM(t, d.layer, 4242, "/"+s.cgroup()) // what the kernel would now say
			observe(scope(ctx), "", -1, "scoped, after the repair")
			observe(ctx, "", 0, "whole, after the repair")
		})
	}
}

// A machine made before the layer has no labels to rebuild it from: it is
// replaced rather than left without it.
func TestMachineWithoutLayerLabelsIsReplaced(t *testing.T) {
	labels := ourLabels("alice", "host-a", "3f2a")
	f := &fakeRunner{answers: map[string]fakeAnswer{"machine ls": {stdout: `[{"name":"bottle-alice","state":"running","labels":` + jsonLabels(labels) + `}]`}}}
	d := newFakeDriver(t, f, Options{})
	rs, err := d.Observe(context.Background())
	if err != nil || len(rs) != 1 || !strings.Contains(rs[0].Broken, "host layer") {
		t.Fatalf("observed %+v, %v; want it broken for want of its host layer", rs, err)
	}
	d = newFakeDriver(t, f, Options{NoHostLayer: true})
	if rs, _ := d.Observe(context.Background()); rs[0].Broken != "" || rs[0].Drift != "" {
		t.Errorf("with the layer off: %+v", rs[0])
	}
}

func jsonLabels(m map[string]string) string {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Once an instance has no bottle, what is left of its layer goes: rules of
// machines removed some other way, their cgroups; other instances' stay.
func TestCleanupTakesTheInstancesLeftovers(t *testing.T) {
	ctx := context.Background()
	l := fakeLayer(t)
	gone := layerSpec{Instance: "inst", Bottle: "gone", Bundle: netip.MustParseAddr("10.77.0.2"), Egress: true}
	other := layerSpec{Instance: "other", Bottle: "kept", Bundle: netip.MustParseAddr("10.77.0.10"), DNS: true}
	for _, s := range []layerSpec{gone, other} {
		if _, err := l.prepare(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.cleanup(ctx, "inst"); err != nil {
		t.Fatal(err)
	}
	ipt := layerIPTables(l)
	for _, f := range families {
		if got := ipt.Table(f).Tagged(VMMChain, gone.comment()); len(got) != 0 {
			t.Errorf("%s: rules of the cleaned-up instance left: %q", f, got)
		}
		if got := ipt.Table(f).Tagged(VMMChain, other.comment()); len(got) == 0 {
			t.Errorf("%s: another instance's rules were removed", f)
		}
	}
	if _, err := os.Stat(filepath.Join(l.root, cgroupBase, "inst")); !os.IsNotExist(err) {
		t.Errorf("instance cgroup left: %v", err)
	}
	if _, err := os.Stat(l.dir(other)); err != nil {
		t.Errorf("another instance's cgroup removed: %v", err)
	}
}
