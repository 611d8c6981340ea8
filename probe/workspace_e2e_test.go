package probe

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
)

const workspaceSpec = guestSpec + `  workspace: {hostPath: %s, guestPath: /work, readOnly: %t}
`

// TestWorkspaceEndToEnd brings up two docker-guest bottles with a
// workspace, one read-only and one read-write, with the real reconciler,
// and probes both: the workspace checks hold. Then a host filesystem is
// mounted into one guest by hand, beside its workspace, and the probe
// must fail on exactly that, naming the mount.
func TestWorkspaceEndToEnd(t *testing.T) {
	cli := dockerOrSkip(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		dockertest.Lacks(t, fmt.Errorf("no iptables: the docker guest driver needs it: %w", err))
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		dockertest.Lacks(t, fmt.Errorf("no nsenter (util-linux): the test mounts into the guest with it: %w", err))
	}
	tmp := t.TempDir()
	id := NewToken()[:6]
	instance, tag := "probe-ws-"+id, "bottle-probe-guest:ws"+id
	ro, rw := "wr"+id, "ww"+id
	pool := fmt.Sprintf("10.218.%d.0/24", int(NewToken()[0])%250+1)
	cleanupInstance(t, cli, instance, tag)
	t.Cleanup(func() { cleanupInstance(t, cli, instance, tag) })
	bin := buildBinary(t, tmp)
	buildGuestImage(t, cli, tag, instance)
	dnsc, err := StartDNSCanary(net.JoinHostPort(hostAddrForBundles(t).String(), "0"),
		map[string][]netip.Addr{"canary.bottle-probe.test": {netip.MustParseAddr("203.0.113.7")}})
	if err != nil {
		t.Fatal(err)
	}
	defer dnsc.Close()

	specs := filepath.Join(tmp, "specs")
	for _, d := range []string{specs, filepath.Join(tmp, ro), filepath.Join(tmp, rw)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []struct {
		name     string
		readOnly bool
	}{{ro, true}, {rw, false}} {
		body := fmt.Appendf(nil, workspaceSpec, b.name, tag, "canary.bottle-probe.test", filepath.Join(tmp, b.name), b.readOnly)
		if err := os.WriteFile(filepath.Join(specs, b.name+".yaml"), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"--instance", instance, "--subnet-pool", pool, "--state-dir", filepath.Join(tmp, "state")}
	var r cmdResult
	for range 3 {
		r = runBin(t, bin, append(append([]string{"--once"}, common...), "--dns-upstream", dnsc.Addr, "--bundle-binary", bin, specs)...)
		if r.code == 0 {
			break
		}
	}
	if r.code != 0 {
		t.Fatalf("reconciler --once did not converge: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// probe runs the CLI's probe of bottle and returns its exit code, the
	// results that did not pass, and the workspace check's observation.
	probe := func(bottle string) (code int, failed []string, workspace string) {
		t.Helper()
		r := runBin(t, bin, append(append([]string{"probe", bottle, "--dir", specs, "-o", "json"}, common...), "--probe-binary", bin)...)
		var rep Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("probe %s -o json: %v\n%s\n%s", bottle, err, r.stdout, r.stderr)
		}
		for _, x := range rep.Results {
			if x.Verdict != Pass {
				failed = append(failed, x.ID+" "+x.Name+": "+x.Observed)
			}
			if strings.HasPrefix(x.Name, "workspace /work mounted") {
				workspace = x.Name + ": " + x.Verdict + " " + x.Observed
			}
		}
		return r.code, failed, workspace
	}
	for _, b := range []struct{ name, want string }{
		{ro, "workspace /work mounted read-only: pass mounted read-only"},
		{rw, "workspace /work mounted read-write: pass mounted read-write"},
	} {
		code, failed, ws := probe(b.name)
		if code != 0 || ws != b.want {
			t.Fatalf("probe of %s: exit %d, workspace check %q (want %q), failed:\n%s", b.name, code, ws, b.want, strings.Join(failed, "\n"))
		}
	}

	// A second view of the host's disk in the read-write guest, as an
	// extra bind mount would give it: the mounts check must catch it.
	pid := strconv.Itoa(guestPid(t, cli, instance, rw))
	for _, args := range [][]string{{"mkdir", "/hostcopy"}, {"mount", "--bind", "/work", "/hostcopy"}} {
		cmd := exec.Command("nsenter", append([]string{"-t", pid, "-m", "--", "/bin/busybox"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%q in the guest's mount namespace: %v: %s", cmd.Args, err, out)
		}
	}
	code, failed, ws := probe(rw)
	t.Logf("probe with an extra host mount: exit %d, failed:\n%s", code, strings.Join(failed, "\n"))
	if code != 1 || len(failed) != 1 || !strings.Contains(failed[0], "no host filesystem mounted but the workspace: HOST MOUNTS /hostcopy (") {
		t.Errorf("probe with an extra host mount at /hostcopy: exit %d, failed %q; want exit 1 and the mounts check alone failing, naming it", code, failed)
	}
	if ws != "workspace /work mounted read-write: pass mounted read-write" {
		t.Errorf("workspace check beside the extra mount: %q", ws)
	}
}
