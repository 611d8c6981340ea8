package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockerguest"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet/sidecar"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw/hostfwtest"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// dockerOrSkip returns a client of a daemon that answers (see dockertest).
func dockerOrSkip(t *testing.T) *client.Client { return dockertest.Client(t) }

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// buildBinary builds the static bottle-reconcile binary.
func buildBinary(t *testing.T, dir string) string {
	return buildBinaryEnv(t, filepath.Join(dir, "bottle-reconcile"), "CGO_ENABLED=0")
}

// buildBinaryEnv builds bottle-reconcile at bin with env added.
func buildBinaryEnv(t *testing.T, bin string, env ...string) string {
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/bottle-reconcile")
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %v: %v\n%s", env, err, out)
	}
	return bin
}

// buildGuestImage builds the busybox guest image, labelled for cleanup.
func buildGuestImage(t *testing.T, cli *client.Client, tag, instance string) {
	dockertest.BuildBusyboxImage(t, cli, tag, map[string]string{bottle.LabelInstance: instance})
}

// instanceRules lists the host firewall rules whose comment names instance
// (and bottle, when it is not empty), as hostfwtest.HostRules prints them.
func instanceRules(t *testing.T, instance, bottle string) []string {
	t.Helper()
	tag := "bottle-reconcile " + instance + " " + bottle
	return hostfwtest.HostRules(t, func(c string) bool {
		return c == tag || (bottle == "" && strings.HasPrefix(c, tag))
	})
}

// cleanupInstance removes everything carrying the instance label, the test
// image and the instance's firewall rules, and fails if anything remains.
func cleanupInstance(t *testing.T, cli *client.Client, instance, imageTag string) {
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", bottle.LabelInstance+"="+instance))
	cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	var built []string // the bundle image this run's binary made
	for _, c := range cs {
		if c.Labels[bottle.LabelRole] == string(bottle.RoleBundle) {
			built = append(built, c.ImageID)
		}
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
	for _, id := range built {
		// Not forced: an image another run's bundle still uses stays.
		_, _ = cli.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: true})
	}
	ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range ns {
		_ = cli.NetworkRemove(ctx, n.ID)
	}
	imgs, _ := cli.ImageList(ctx, image.ListOptions{Filters: f})
	for _, im := range imgs {
		_, _ = cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
	_, _ = cli.ImageRemove(ctx, imageTag, image.RemoveOptions{Force: true, PruneChildren: true})
	hostfwtest.DeleteHostRules(t, instanceRules(t, instance, ""))

	cs, _ = cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	ns, _ = cli.NetworkList(ctx, network.ListOptions{Filters: f})
	imgs, _ = cli.ImageList(ctx, image.ListOptions{Filters: f})
	if len(cs)+len(ns)+len(imgs) > 0 {
		t.Errorf("left behind: %d container(s), %d network(s), %d image(s) of instance %s", len(cs), len(ns), len(imgs), instance)
	}
	if rs := instanceRules(t, instance, ""); len(rs) > 0 {
		t.Errorf("left behind firewall rules: %q", rs)
	}
}

// metadataStandIn serves token on 169.254.169.254:80 from a dummy link, if
// iproute2 is present. It returns "" when it cannot.
func metadataStandIn(t *testing.T, token string) string {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Logf("metadata stand-in skipped: no ip command (iproute2): %v", err)
		return ""
	}
	link := "bmd" + token[:8]
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	dev := link
	if err := run("link", "add", link, "type", "dummy"); err != nil {
		// No dummy links in this kernel: hold the address on loopback
		// instead; the guest's packets to it still reach the host.
		t.Logf("metadata stand-in on loopback (%v)", err)
		dev = "lo"
	} else {
		t.Cleanup(func() {
			if err := run("link", "del", link); err != nil {
				t.Error(err)
			}
		})
		if err := run("link", "set", link, "up"); err != nil {
			t.Fatal(err)
		}
	}
	if err := run("addr", "add", metadataAddr+"/32", "dev", dev); err != nil {
		t.Logf("metadata stand-in skipped (the host already holds the address?): %v", err)
		return ""
	}
	t.Cleanup(func() {
		if dev == "lo" {
			if err := run("addr", "del", metadataAddr+"/32", "dev", "lo"); err != nil {
				t.Error(err)
			}
		}
	})
	ln, err := net.Listen("tcp", metadataAddr+":80")
	if err != nil {
		t.Logf("metadata stand-in skipped: %v", err)
		return ""
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "metadata "+token+"\n")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	// The stand-in must answer on the host, or a pass would mean nothing.
	resp, err := http.Get("http://" + metadataAddr + "/")
	if err != nil {
		t.Fatalf("metadata stand-in does not answer on the host: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), token) {
		t.Fatalf("metadata stand-in answered %q", b)
	}
	return token
}

// hostAddrForBundles is a host address the bundles can reach from their
// egress network: the host's own, not the bottles'.
func hostAddrForBundles(t *testing.T) netip.Addr {
	for _, a := range hostAddrs() {
		if !netip.MustParsePrefix("10.0.0.0/8").Contains(a) {
			return a
		}
	}
	dockertest.Lacks(t, errors.New("no host IPv4 address outside 10/8 for the canary resolver"))
	return netip.Addr{}
}

type cmdResult struct {
	code           int
	stdout, stderr string
}

func runBin(t *testing.T, bin string, args ...string) cmdResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return cmdResult{code, so.String(), se.String()}
}

const guestSpec = `apiVersion: bottle-reconcile/v1alpha1
kind: Bottle
metadata:
  name: %s
spec:
  guest: docker
  image: %s
  egress:
    allow: [%s]
  resources: {cpus: 1, memoryMiB: 256}
`

// TestEndToEnd brings up two docker-guest bottles with the real reconciler,
// probes one (every probe must hold), then drops the host firewall layer
// from the test and shows the probes catch it.
func TestEndToEnd(t *testing.T) {
	cli := dockerOrSkip(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		dockertest.Lacks(t, fmt.Errorf("no iptables: the docker guest driver needs it: %w", err))
	}
	start := time.Now()
	tmp := t.TempDir()
	id := NewToken()[:6]
	instance := "probe-" + id
	tag := "bottle-probe-guest:" + id
	a, b := "pa"+id, "pb"+id
	// A /24 of 10.218.0.0/16 of its own, so parallel runs do not collide.
	pool := fmt.Sprintf("10.218.%d.0/24", int(NewToken()[0])%250+1)

	cleanupInstance(t, cli, instance, tag)
	t.Cleanup(func() { cleanupInstance(t, cli, instance, tag) })
	bin := buildBinary(t, tmp)
	buildGuestImage(t, cli, tag, instance)

	host := hostAddrForBundles(t)
	zone := map[string][]netip.Addr{
		"canary.bottle-probe.test": {netip.MustParseAddr("203.0.113.7")},
		"rebind.bottle-probe.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr(metadataAddr)},
	}
	dnsc, err := StartDNSCanary(net.JoinHostPort(host.String(), "0"), zone)
	if err != nil {
		t.Fatal(err)
	}
	defer dnsc.Close()
	mdToken := metadataStandIn(t, NewToken())

	specs := filepath.Join(tmp, "specs")
	if err := os.Mkdir(specs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{a, b}, {b, a}} {
		// The peer's bundle name is allowlisted: Docker's DNS resolves it,
		// for the proxy, to a private address, which must be refused.
		allow := "canary.bottle-probe.test, rebind.bottle-probe.test, bottle-" + p[1] + "-bundle"
		if err := os.WriteFile(filepath.Join(specs, p[0]+".yaml"), fmt.Appendf(nil, guestSpec, p[0], tag, allow), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"--instance", instance, "--subnet-pool", pool, "--state-dir", filepath.Join(tmp, "state")}
	var r cmdResult
	for range 3 {
		r = runBin(t, bin, append(append([]string{"--once"}, common...), "--dns-upstream", dnsc.Addr, "--bundle-binary", bin, "--log-format", "text", specs)...)
		if r.code == 0 {
			break
		}
	}
	if r.code != 0 {
		t.Fatalf("reconciler --once did not converge: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("reconciled in %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(r.stdout))

	// The CLI, as a user runs it.
	probeArgs := append(append([]string{"probe", a, "--dir", specs}, common...), "--probe-binary", bin)
	r = runBin(t, bin, probeArgs...)
	t.Logf("bottle-reconcile probe %s: exit %d\n%s%s", a, r.code, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("probe of a sound bottle exited %d", r.code)
	}

	// 14: fail-closed churn. Probes loop while the bottle's host rules are
	// deleted and its bundle is killed; no probe that must be blocked may
	// ever succeed (controls that need the bundle may fail while it is
	// away: that is the guest losing its network, not escaping). Then a
	// reconcile pass must restore both.
	churnDone := make(chan struct{})
	stopChurn := sync.OnceFunc(func() { close(churnDone) })
	defer stopChurn() // also when the test fails half way
	var completed atomic.Int64
	type churnRun struct {
		leaks []string
		err   error
	}
	runs := make(chan churnRun, 64)
	go func() {
		defer close(runs)
		for {
			select {
			case <-churnDone:
				return
			default:
			}
			cmd := exec.Command(bin, append(probeArgs, "-o", "json")...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var rep Report
			if jerr := json.Unmarshal(out, &rep); jerr != nil {
				err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
				// The guest is stopped while its bundle is replaced: the
				// probe cannot run, which is the guest being cut off.
				runs <- churnRun{err: fmt.Errorf("probe -o json: %v (%v)", jerr, err)}
				time.Sleep(300 * time.Millisecond)
				continue
			}
			var leaks []string
			for _, x := range rep.Results {
				if x.Verdict != Pass && x.Expected == "blocked" {
					leaks = append(leaks, x.ID+" "+x.Name+": "+x.Observed)
				}
			}
			runs <- churnRun{leaks: leaks}
			completed.Add(1)
		}
	}()
	// waitRuns waits for k probe runs to complete from now on.
	waitRuns := func(k int64, why string) {
		t.Helper()
		want := completed.Load() + k
		for end := time.Now().Add(45 * time.Second); completed.Load() < want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("churn: no %d complete probe run(s) %s within 45s", k, why)
			}
		}
	}
	hostfwtest.DeleteHostRules(t, instanceRules(t, instance, a))
	// Two, so at least one started after the rules were gone.
	waitRuns(2, "with the host rules gone")
	if out, err := exec.Command("docker", "kill", "bottle-"+a+"-bundle").CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v: %s", err, out)
	}
	time.Sleep(5 * time.Second) // probes meanwhile find the guest cut off
	r = runBin(t, bin, append(append([]string{"--once"}, common...), "--dns-upstream", dnsc.Addr, "--bundle-binary", bin, specs)...)
	if r.code != 0 {
		t.Errorf("the pass after churn exited %d:\n%s", r.code, r.stderr)
	}
	// The guest is stopped while its bundle is replaced and its rules are
	// put back before it starts again (fail closed).
	if len(instanceRules(t, instance, a)) == 0 {
		t.Errorf("host rules not restored by the pass: %s", r.stdout)
	}
	waitRuns(1, "against the healed bottle")
	stopChurn()
	n, cutOff := 0, 0
	for run := range runs {
		if run.err != nil {
			if cutOff++; cutOff <= 3 {
				t.Logf("churn: a probe could not run: %v", run.err)
			}
			continue
		}
		n++
		if len(run.leaks) > 0 {
			t.Errorf("a probe succeeded during churn:\n%s", strings.Join(run.leaks, "\n"))
		}
	}
	t.Logf("churn: %d complete probe runs (at least one with the rules gone) and %d attempts that found the guest cut off (its bundle killed); none leaked", n, cutOff)
	if r := runBin(t, bin, probeArgs...); r.code != 0 {
		t.Fatalf("probe after the churn was healed exited %d:\n%s", r.code, r.stdout)
	}

	// In process, with the test's canaries: the metadata stand-in, the
	// canary resolver and rebinding names.
	sp := loadSpec(t, specs, a)
	netd, bund, guests := drivers(t, cli)
	opts := Options{Network: netd, Bundle: bund, Guest: guests, Instance: instance, Bottle: a, Spec: sp, Binary: bin,
		MetadataToken: mdToken, DNSControl: "canary.bottle-probe.test",
		Rebind: []Rebind{
			// The canary upstream answers this allowlisted name with
			// loopback and metadata addresses; the resolver and the proxy
			// both resolve through it and must refuse them.
			{Name: "rebind.bottle-probe.test", BadIPs: []string{"127.0.0.1", metadataAddr}, Proxy: true},
		},
		DNSSeen: dnsc.Seen}
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var tbl bytes.Buffer
	Render(&tbl, rep)
	t.Logf("with test canaries:\n%s", tbl.String())
	if !rep.Passed {
		t.Fatalf("probe with test canaries failed")
	}
	// With its routes narrowed, every block of a docker guest is a refusal
	// or a missing route, never a wait.
	for _, x := range rep.Results {
		if x.Slow {
			t.Errorf("%s %s held only by a timeout (%s, %dms)", x.ID, x.Name, x.Observed, x.Millis)
		}
	}
	if !dnsc.Seen("canary.bottle-probe.test") {
		t.Fatalf("the canary resolver never saw the control name: asked %v", dnsc.Asked())
	}

	// The host is kept out of reach by three layers: a docker guest's
	// bridge has no host address (no layer-3 path to the host at all), host
	// firewall rules reject everything from the guest but its bundle ports,
	// and the guest's own routing table holds only the route to its bundle.
	// Each layer alone must hold, and with all gone the probes must fail:
	// that proves they can. No reconcile pass runs in between, so nothing
	// is repaired behind the test's back.
	sub := subnetOf(t, cli, instance, a)
	gw := bottle.Gateway(sub)
	pid := guestPid(t, cli, instance, a)
	widen := []string{"route add " + sub.String() + " dev eth0", "route add default via " + gw.String() + " dev eth0"}
	narrow := []string{"route del default dev eth0", "route del " + sub.String() + " dev eth0"}
	probeFailures := func(step string) (int, []string) {
		t.Helper()
		r := runBin(t, bin, append(probeArgs, "-o", "json")...)
		var rep Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("%s: probe -o json: %v\n%s\n%s", step, err, r.stdout, r.stderr)
		}
		var failed []string
		slow := 0
		for _, x := range rep.Results {
			if x.Verdict != Pass {
				failed = append(failed, x.ID+" "+x.Name+": "+x.Observed)
			}
			if x.Slow {
				slow++
			}
		}
		t.Logf("%s: exit %d in %s, %d slow block(s), failed:\n%s", step, r.code, ms(rep.Millis), slow, strings.Join(failed, "\n"))
		return r.code, failed
	}

	// The firewall alone: the gateway address and Docker's routes come
	// back, the rules stay.
	bridge := bridgeOf(t, cli, instance, a)
	addGateway(t, bridge, gw, sub)
	setRoutes(t, pid, widen...)
	if code, failed := probeFailures("firewall only"); code != 0 {
		t.Fatalf("the host firewall alone did not hold: %v", failed)
	}
	// The hostless bridge alone: no gateway address, no rules, wide routes.
	// The guest's neighbour entry for the gateway, learnt in the step
	// before, goes too: a bridge that never had an address never answered
	// ARP, and with that entry datagrams still reach the host one way
	// (which the host canaries see though no reply comes back).
	delGateway(t, bridge, gw, sub)
	setRoutes(t, pid, "neigh flush all")
	rules := instanceRules(t, instance, a)
	if len(rules) == 0 {
		t.Fatalf("no firewall rules tagged for %s", a)
	}
	hostfwtest.DeleteHostRules(t, rules)
	if code, failed := probeFailures("hostless bridge only"); code != 0 {
		t.Fatalf("the hostless bridge alone did not hold: %v", failed)
	}
	// The guest's routes alone: the gateway address back, no rules.
	addGateway(t, bridge, gw, sub)
	setRoutes(t, pid, narrow...)
	if code, failed := probeFailures("guest routes only"); code != 0 {
		t.Fatalf("the guest's narrowed routes alone did not hold: %v", failed)
	}
	// All three gone: the direct dial to the host canary at the gateway
	// must return its token, and the probe must exit 1.
	setRoutes(t, pid, widen...)
	code, failed := probeFailures("all layers gone")
	if code != 1 {
		t.Fatalf("probe exit %d with every host layer gone, want 1", code)
	}
	if !strings.Contains(strings.Join(failed, "\n"), "host "+gw.String()+" canary direct: TOKEN RETURNED") {
		t.Errorf("the direct dial to the host canary at %s did not fail", gw)
	}
	// The same weakening, probed in process with the metadata stand-in:
	// the direct metadata probe must now fail too.
	if mdToken != "" {
		rep, err := Run(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		var md Result
		for _, x := range rep.Results {
			if x.ID == "1.1" {
				md = x
			}
		}
		t.Logf("metadata probe with the host rules gone: %s %s", md.Verdict, md.Observed)
		if md.Verdict != Fail || md.Observed != "TOKEN RETURNED" {
			t.Errorf("metadata probe %+v, want a failure with the token", md)
		}
	}
	t.Logf("end to end in %s", time.Since(start).Round(time.Millisecond))
}

func loadSpec(t *testing.T, dir, name string) spec.Spec {
	res, err := spec.LoadDir(dir, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range res.Bottles {
		if b.Metadata.Name == name {
			return b.Spec
		}
	}
	t.Fatalf("no spec for %s", name)
	return spec.Spec{}
}

// bridgeOf returns the Linux bridge behind a bottle's network.
func bridgeOf(t *testing.T, cli *client.Client, instance, bottleName string) string {
	ns, err := cli.NetworkList(context.Background(), network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", bottle.LabelInstance+"="+instance), filters.Arg("label", bottle.LabelBottle+"="+bottleName))})
	if err != nil || len(ns) != 1 {
		t.Fatalf("network of %s: %v (%d)", bottleName, err, len(ns))
	}
	return "br-" + ns[0].ID[:12]
}

// addGateway gives the host an address on a bottle bridge, undoing the
// hostless layer; delGateway takes it away again.
func addGateway(t *testing.T, bridge string, gw netip.Addr, p netip.Prefix) {
	t.Helper()
	addr := netip.PrefixFrom(gw, p.Bits()).String()
	if out, err := exec.Command("ip", "addr", "add", addr, "dev", bridge).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add %s dev %s: %v: %s", addr, bridge, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "addr", "del", addr, "dev", bridge).Run() })
}

func delGateway(t *testing.T, bridge string, gw netip.Addr, p netip.Prefix) {
	t.Helper()
	addr := netip.PrefixFrom(gw, p.Bits()).String()
	if out, err := exec.Command("ip", "addr", "del", addr, "dev", bridge).CombinedOutput(); err != nil {
		t.Fatalf("ip addr del %s dev %s: %v: %s", addr, bridge, err, out)
	}
}

// guestPid returns the host pid of a bottle's running guest.
func guestPid(t *testing.T, cli *client.Client, instance, bottleName string) int {
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", bottle.LabelInstance+"="+instance), filters.Arg("label", bottle.LabelBottle+"="+bottleName),
		filters.Arg("label", bottle.LabelRole+"="+string(bottle.RoleGuest)))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("guest of %s: %v (%d)", bottleName, err, len(cs))
	}
	c, err := cli.ContainerInspect(ctx, cs[0].ID)
	if err != nil || c.State == nil || c.State.Pid == 0 {
		t.Fatalf("inspect guest of %s: %v", bottleName, err)
	}
	return c.State.Pid
}

// setRoutes changes the routes inside the network namespace of pid.
func setRoutes(t *testing.T, pid int, batch ...string) {
	t.Helper()
	cmd := exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", "ip", "-4", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(batch, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip %q in pid %d: %v: %s", batch, pid, err, out)
	}
}

func subnetOf(t *testing.T, cli *client.Client, instance, bottleName string) netip.Prefix {
	ns, err := cli.NetworkList(context.Background(), network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", bottle.LabelInstance+"="+instance), filters.Arg("label", bottle.LabelBottle+"="+bottleName))})
	if err != nil || len(ns) != 1 {
		t.Fatalf("network of %s: %v (%d)", bottleName, err, len(ns))
	}
	for _, c := range ns[0].IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
			return p.Masked()
		}
	}
	t.Fatalf("network of %s has no IPv4 subnet", bottleName)
	return netip.Prefix{}
}

// drivers are the drivers the CLI observes and runs docker guests with.
func drivers(t *testing.T, cli *client.Client) (netd, bund Observer, guests GuestDriver) {
	t.Helper()
	netd, err := dockernet.NewNetworkDriver(cli, dockernet.Options{}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	bund, err = sidecar.New(cli, sidecar.Options{}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	guests, err = dockerguest.New(cli, dockerguest.Options{}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return netd, bund, guests
}

const smolvmSpec = `apiVersion: bottle-reconcile/v1alpha1
kind: Bottle
metadata:
  name: %s
spec:
  guest: smolvm
  image: %s
  egress:
    allow: [canary.bottle-probe.test]
  resources: {cpus: 1, memoryMiB: 512}
`

// TestSmolvmGuest brings a smolvm bottle up with the real reconciler
// (--once), runs the probe in it through `smolvm machine cp/exec`, and tears
// it down. It runs whenever a real smolvm is on PATH (or BOTTLE_SMOLVM_BIN)
// and /dev/kvm is usable, and skips saying which is missing otherwise (the
// emulator runs exec on the host, so probing it would prove nothing). The
// smolvm plumbing runs always, in TestSmolvmGuestOnEmulator.
func TestSmolvmGuest(t *testing.T) {
	smolvm := os.Getenv("BOTTLE_SMOLVM_BIN")
	if smolvm == "" {
		smolvm = "smolvm"
	}
	smolvm, err := exec.LookPath(smolvm)
	if err != nil {
		t.Skipf("no real smolvm on PATH or in BOTTLE_SMOLVM_BIN: %v", err)
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("smolvm is at %s but /dev/kvm is not usable: %v", smolvm, err)
	} else {
		f.Close()
	}
	cli := dockerOrSkip(t)
	tmp := t.TempDir()
	id := NewToken()[:6]
	instance, tag, name := "probe-vm-"+id, "bottle-probe-guest:vm"+id, "pv"+id
	pool := fmt.Sprintf("10.218.%d.0/24", int(NewToken()[0])%250+1)
	cleanupInstance(t, cli, instance, tag)
	bin := buildBinary(t, tmp)
	buildGuestImage(t, cli, tag, instance)

	specs := filepath.Join(tmp, "specs")
	if err := os.Mkdir(specs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(specs, name+".yaml"), fmt.Appendf(nil, smolvmSpec, name, tag), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--instance", instance, "--subnet-pool", pool, "--state-dir", filepath.Join(tmp, "state"), "--smolvm", smolvm}
	t.Cleanup(func() {
		r := runBin(t, bin, append([]string{"down", "--all", "--force", "--dir", specs}, common...)...)
		if r.code != 0 {
			t.Errorf("down exited %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		out, err := exec.Command(smolvm, "machine", "ls", "--json").Output()
		if err != nil {
			t.Errorf("smolvm machine ls: %v", err)
		} else if strings.Contains(string(out), name) {
			t.Errorf("machine of %s left behind: %s", name, out)
		}
		cleanupInstance(t, cli, instance, tag)
	})

	var r cmdResult
	for range 3 {
		r = runBin(t, bin, append(append([]string{"--once"}, common...), "--bundle-binary", bin, "--log-format", "text", specs)...)
		if r.code == 0 {
			break
		}
	}
	if r.code != 0 {
		t.Fatalf("reconciler --once did not converge: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, bin, append(append([]string{"probe", name, "--dir", specs}, common...), "--probe-binary", bin)...)
	t.Logf("bottle-reconcile probe %s: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatal("a probe failed in the smolvm guest")
	}
	if !strings.Contains(r.stdout, "(smolvm machine ") {
		t.Errorf("the probe did not run through smolvm:\n%s", r.stdout)
	}
}
