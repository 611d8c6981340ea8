package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/bottle-reconcile/bottle-reconcile/internal/watchlog"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

var (
	buildOnce sync.Once
	binDir    string // holds bottle-reconcile (static) and smolvm (the emulator)
	buildErr  error
)

// buildBinaries builds the CLI, statically so it also serves as the bundle
// binary, and the smolvm emulator.
func buildBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "watch-test-bin-")
		if buildErr != nil {
			return
		}
		for _, b := range [][2]string{{"bottle-reconcile", "."}, {"smolvm", "../smolvm-emulator"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b[0]), b[1])
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", b[0], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// requireDocker returns a client of a daemon that answers (see dockertest).
func requireDocker(t *testing.T) *client.Client { return dockertest.Client(t) }

// e2e is one instance's environment for running the real binary.
type e2e struct {
	t                       *testing.T
	cli                     *client.Client
	bin, specs, state, data string
	inst, metrics           string
	// image is a local image the specs name: every image goes through the
	// host's Docker, and this one needs no registry.
	image string
}

func newE2E(t *testing.T) *e2e {
	cli := requireDocker(t)
	b := make([]byte, 4)
	rand.Read(b)
	x := &e2e{t: t, cli: cli, bin: buildBinaries(t), specs: t.TempDir(), state: t.TempDir(), data: t.TempDir(), inst: "wt-" + hex.EncodeToString(b)}
	x.image = "bottle-test-watch:" + x.inst
	dockertest.Build(t, cli, x.image, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": x.inst})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x.metrics = ln.Addr().String()
	ln.Close()
	t.Cleanup(x.cleanup)
	return x
}

func (x *e2e) command(args ...string) *exec.Cmd {
	// The host layer around smolvm's VMM is e2e/ and drivers/smolvm's to
	// test; here it would only leave rules behind with the machines these
	// tests remove by hand.
	base := []string{"--instance", x.inst, "--state-dir", x.state, "--subnet-pool", "10.217.0.0/24",
		"--bundle-binary", filepath.Join(x.bin, "bottle-reconcile"), "--log-format", "json", "--smolvm-host-layer=false"}
	cmd := exec.Command(filepath.Join(x.bin, "bottle-reconcile"), append(append(args, base...), x.specs)...)
	cmd.Env = append(os.Environ(), "PATH="+x.bin+string(os.PathListSeparator)+os.Getenv("PATH"), "SMOLVM_DATA_DIR="+x.data)
	return cmd
}

func (x *e2e) writeSpec(name string) {
	x.t.Helper()
	body := fmt.Sprintf("apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata: {name: %s}\nspec:\n  image: %s\n", name, x.image)
	if err := os.WriteFile(filepath.Join(x.specs, name+".yaml"), []byte(body), 0o644); err != nil {
		x.t.Fatal(err)
	}
}

// poll calls ok every 50 ms until it holds or d passes.
func poll(d time.Duration, ok func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

func (x *e2e) containers() []container.Summary {
	cs, err := x.cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", bottle.LabelInstance+"="+x.inst))})
	if err != nil {
		x.t.Fatal(err)
	}
	return cs
}

func (x *e2e) networks() []network.Summary {
	ns, err := x.cli.NetworkList(context.Background(), network.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", bottle.LabelInstance+"="+x.inst))})
	if err != nil {
		x.t.Fatal(err)
	}
	// The egress network is found by name too, should its labels ever change.
	if eg, err := x.cli.NetworkInspect(context.Background(), dockerx.EgressNetworkName(x.inst), network.InspectOptions{}); err == nil &&
		!slices.ContainsFunc(ns, func(n network.Summary) bool { return n.ID == eg.ID }) {
		ns = append(ns, network.Summary{ID: eg.ID, Name: eg.Name})
	}
	return ns
}

// runningBundle returns the ID of bottle's bundle once it runs (a bundle
// is created only once it said it is ready).
func (x *e2e) runningBundle(bottleName string) string {
	for _, c := range x.containers() {
		if c.Labels[bottle.LabelBottle] == bottleName && c.Labels[bottle.LabelRole] == "bundle" && c.State == container.StateRunning {
			return c.ID
		}
	}
	return ""
}

func (x *e2e) machines() []string {
	cmd := exec.Command(filepath.Join(x.bin, "smolvm"), "machine", "ls", "--json")
	cmd.Env = append(os.Environ(), "SMOLVM_DATA_DIR="+x.data)
	b, err := cmd.Output()
	if err != nil {
		x.t.Errorf("smolvm machine ls: %v", err)
		return nil
	}
	var ms []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &ms); err != nil {
		x.t.Errorf("smolvm machine ls: %v", err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	return names
}

// cleanup removes everything of the instance, then checks nothing is left.
func (x *e2e) cleanup() {
	ctx := context.Background()
	for _, m := range x.machines() {
		cmd := exec.Command(filepath.Join(x.bin, "smolvm"), "machine", "delete", "-f", "--name", m)
		cmd.Env = append(os.Environ(), "SMOLVM_DATA_DIR="+x.data)
		if out, err := cmd.CombinedOutput(); err != nil {
			x.t.Errorf("delete machine %s: %v %s", m, err, out)
		}
	}
	for _, c := range x.containers() {
		if err := x.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			x.t.Errorf("remove container %s: %v", c.Names, err)
		}
	}
	for _, n := range x.networks() {
		if err := x.cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			x.t.Errorf("remove network %s: %v", n.Name, err)
		}
	}
	if cs, ns, ms := x.containers(), x.networks(), x.machines(); len(cs)+len(ns)+len(ms) > 0 {
		x.t.Errorf("left behind: %d containers, %d networks, machines %v", len(cs), len(ns), ms)
	}
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWatchHealsAndStopsGracefully(t *testing.T) {
	x := newE2E(t)
	x.writeSpec("heal")
	var logs watchlog.Buffer
	cmd := x.command("--metrics-addr", x.metrics)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("watch log:\n%s", logs.String())
		}
	}()

	var bundle string
	if !poll(60*time.Second, func() bool {
		code, _ := get("http://" + x.metrics + "/readyz")
		bundle = x.runningBundle("heal")
		return code == http.StatusOK && bundle != ""
	}) {
		t.Fatal("not ready with a running bundle within 60s")
	}
	if _, body := get("http://" + x.metrics + "/metrics"); !strings.Contains(body, `bottle_bottles{state="Ready"} 1`) {
		t.Fatalf("/metrics does not show the ready bottle:\n%s", body)
	}

	// Out-of-band removal: healed from the Docker event, not the resync.
	start := time.Now()
	if err := x.cli.ContainerRemove(context.Background(), bundle, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	healed := poll(10*time.Second, func() bool {
		id := x.runningBundle("heal")
		return id != "" && id != bundle
	})
	took := time.Since(start)
	t.Logf("docker rm -f of the bundle healed in %v", took.Round(time.Millisecond))
	if !healed || took > 5*time.Second {
		t.Fatalf("bundle healed: %v after %v; want running again within 5s", healed, took)
	}
	// By the pass the die started: Docker lists a dying container as
	// running for a while after its die, and that pass must not believe it.
	// That pass looks at the healed bottle alone.
	var passes []watchlog.Pass
	poll(10*time.Second, func() bool { passes = watchlog.Passes(logs.String(), "docker die"); return len(passes) > 0 })
	if len(passes) == 0 || passes[0].Ops == 0 || passes[0].Scope != "heal" {
		t.Fatalf("the passes on the bundle's die: %+v; want the heal done by the first, scoped to its bottle", passes)
	}

	// SIGTERM in the middle of a pass: a new bottle is being created.
	x.writeSpec("term")
	if !poll(10*time.Second, func() bool {
		for _, n := range x.networks() {
			if n.Name == bottle.Names("term", bottle.RoleNetwork) {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the pass for the new bottle did not start")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("watch after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("watch did not exit within the shutdown timeout")
	}

	// The next start converges, with exactly one of everything.
	once := x.command("--once")
	if out, err := once.CombinedOutput(); err != nil {
		t.Fatalf("--once after SIGTERM: %v\n%s", err, out)
	}
	if cs, ns, ms := x.containers(), x.networks(), x.machines(); len(cs) != 2 || len(ns) != 3 || len(ms) != 2 {
		t.Fatalf("after convergence: %d containers (want 2 bundles), %d networks (want 2 + egress), machines %v (want 2)", len(cs), len(ns), ms)
	}
}

// killEmulators kills the smolvm emulator processes of this test's data
// directory that are still running, e.g. a call made to hang.
func (x *e2e) killEmulators() {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err == nil && slices.Contains(strings.Split(string(env), "\x00"), "SMOLVM_DATA_DIR="+x.data) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestWatchSignalsAndLock runs the real binary in watch mode: a second
// reconciler of the instance exits 3 naming the holder, SIGHUP runs a pass
// at once, and a second SIGTERM exits at once although an operation is in
// flight (a smolvm create that hangs).
func TestWatchSignalsAndLock(t *testing.T) {
	x := newE2E(t)
	logs := &watchlog.Buffer{}
	cmd := x.command("--metrics-addr", x.metrics, "--resync", "1h", "--shutdown-timeout", "60s")
	// smolvm runs with a minimal environment: the emulator reads its fault
	// settings from its data dir.
	faults := filepath.Join(x.data, "emu", "faults.env")
	if err := os.MkdirAll(filepath.Dir(faults), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(faults, []byte("SMOLVM_EMU_HANG=create\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	// Its own process group, so the hung smolvm child can be killed too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
		// The hung smolvm call runs in a process group of its own.
		x.killEmulators()
		if t.Failed() {
			t.Logf("watch log:\n%s", logs.String())
		}
	}()
	if !poll(30*time.Second, func() bool { code, _ := get("http://" + x.metrics + "/readyz"); return code == http.StatusOK }) {
		t.Fatal("not ready within 30s")
	}

	// The lock is held for the whole run: a second watcher, or --once,
	// exits 3 and names the holder.
	for _, args := range [][]string{nil, {"--once"}, {"--lock-timeout", "300ms"}} {
		second := x.command(args...)
		timer := time.AfterFunc(30*time.Second, func() { second.Process.Kill() }) // should the lock not hold
		out, err := second.CombinedOutput()
		timer.Stop()
		if second.ProcessState == nil || second.ProcessState.ExitCode() != 3 || !strings.Contains(string(out), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
			t.Errorf("second reconciler %v while the watcher runs: %v, want exit 3 naming pid %d\n%s", args, err, cmd.Process.Pid, out)
		}
	}

	// SIGHUP: a pass now, not at the resync an hour away.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !poll(5*time.Second, func() bool { return len(watchlog.Passes(logs.String(), reconciler.ReasonSignal)) == 1 }) {
		t.Fatal("no pass within 5s of SIGHUP")
	}

	// A new bottle whose machine create hangs: an operation in flight.
	x.writeSpec("hang")
	calls := filepath.Join(x.data, "emu", "calls.jsonl")
	if !poll(60*time.Second, func() bool {
		b, _ := os.ReadFile(calls)
		return strings.Contains(string(b), `"create"`)
	}) {
		t.Fatal("the machine create did not start within 60s")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("the first SIGTERM did not wait for the operation in flight: %v", err)
	case <-time.After(time.Second):
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("after a second SIGTERM: %v, want exit 130", err)
		}
		t.Logf("a second SIGTERM exited in %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("a second SIGTERM did not exit at once")
	}
	// The hung smolvm call dies with the reconciler, although it runs in a
	// process group of its own.
	if !poll(2*time.Second, func() bool { return len(x.emulatorCalls("create")) == 0 }) {
		t.Errorf("smolvm create calls outlived the reconciler: pids %v", x.emulatorCalls("create"))
	}
}

// emulatorCalls returns the pids of this test's smolvm emulator processes
// running `machine <op>`.
func (x *e2e) emulatorCalls(op string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), "SMOLVM_DATA_DIR="+x.data) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if st, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "stat")); strings.Contains(string(st), ") Z ") {
			continue // a zombie is dead, only not reaped yet
		}
		if strings.Contains(string(cmdline), "machine\x00"+op+"\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}
