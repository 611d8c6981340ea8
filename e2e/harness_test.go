package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

const (
	labelInstance = "dev.bottle-reconcile.instance"
	labelBottle   = "dev.bottle-reconcile.bottle"
	labelRole     = "dev.bottle-reconcile.role"
	testImage     = "ghcr.io/acme/agent:1.4"
)

var (
	binDir    string // holds bottle-reconcile and smolvm (the emulator)
	reconBin  string
	docker    *client.Client
	dockerErr error
	// poolBase and poolSeq hand every test its own /24 of 10.216.0.0/16;
	// the random base keeps two concurrent runs of the suite apart.
	poolBase int
	poolSeq  atomic.Int32
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// The tests mostly wait on subprocesses and Docker, so run more of them
	// at once than there are CPUs unless -parallel says otherwise.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	dir, err := os.MkdirTemp("", "bottle-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	reconBin = filepath.Join(dir, "bottle-reconcile")
	for _, b := range []struct{ out, pkg string }{
		{reconBin, "./cmd/bottle-reconcile"},
		{filepath.Join(dir, "smolvm"), "./cmd/smolvm-emulator"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(200))
	poolBase = int(n.Int64())

	docker, dockerErr = dockertest.Dial(context.Background())
	preexisting := bundleImages()
	code := m.Run()
	if docker != nil {
		// The bundle image built from this run's binary is this run's
		// leftover; one that existed before, or is still in use, stays.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for id := range bundleImages() {
			if !preexisting[id] {
				_, _ = docker.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: true})
			}
		}
		if agentBuilt.Load() {
			_, _ = docker.ImageRemove(ctx, testImage, image.RemoveOptions{Force: true, PruneChildren: true})
		}
		cancel()
		docker.Close()
	}
	return code
}

// The guests' image. smolvm guests get their image from the host's Docker
// (pulled there, then exported as an archive), and no registry answers
// here, so testImage is built locally once, under its registry name, and
// removed at the end when this run made it.
var (
	agentOnce  sync.Once
	agentBuilt atomic.Bool
)

func ensureAgentImage(t *testing.T) {
	agentOnce.Do(func() {
		ctx, cancel := ctxT()
		defer cancel()
		if _, err := docker.ImageInspect(ctx, testImage); err == nil {
			return
		}
		dockertest.BuildBusyboxImage(t, docker, testImage, map[string]string{"dev.bottle-reconcile.e2e": "agent"})
		agentBuilt.Store(true)
	})
}

// bundleImages returns the IDs of the bundle images present, a set.
func bundleImages() map[string]bool {
	out := map[string]bool{}
	if dockerErr != nil {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	imgs, err := docker.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", "bottle-reconcile-bundle"))})
	if err != nil {
		return out
	}
	for _, im := range imgs {
		out[im.ID] = true
	}
	return out
}

// requireDocker ends the test when Docker does not answer (see dockertest).
func requireDocker(t *testing.T) {
	t.Helper()
	if dockerErr != nil {
		dockertest.Unusable(t, dockerErr)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// env is one test's world: its directories, instance and pool.
type env struct {
	t        *testing.T
	root     string
	specs    string
	state    string
	data     string // SMOLVM_DATA_DIR
	instance string
	tag      string // prefixes bottle names: Docker network names are host-wide
	pool     string // e.g. 10.216.7.0/24
	poolNet  string // e.g. 10.216.7
	extraEnv []string
}

// newEnv makes a fresh world and registers its cleanup.
func newEnv(t *testing.T) *env {
	t.Helper()
	requireDocker(t)
	ensureAgentImage(t)
	tag := randHex(3)
	n := (poolBase + int(poolSeq.Add(1))) % 250
	root := t.TempDir()
	e := &env{
		t:        t,
		root:     root,
		specs:    filepath.Join(root, "specs"),
		state:    filepath.Join(root, "state"),
		data:     filepath.Join(root, "smolvm"),
		instance: "e2e-" + tag,
		tag:      "e" + tag,
		pool:     fmt.Sprintf("10.216.%d.0/24", n),
		poolNet:  fmt.Sprintf("10.216.%d", n),
	}
	for _, d := range []string{e.specs, e.data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { e.cleanup() })
	return e
}

// twin returns a second instance sharing this world's SMOLVM_DATA_DIR (as
// two reconcilers on one host share smolvm) and pool, with its own spec and
// state directories.
func (e *env) twin() *env {
	e.t.Helper()
	tag := randHex(3)
	root := e.t.TempDir()
	o := &env{
		t: e.t, root: root,
		specs: filepath.Join(root, "specs"), state: filepath.Join(root, "state"),
		data: e.data, instance: "e2e-" + tag, tag: "e" + tag, pool: e.pool, poolNet: e.poolNet,
	}
	if err := os.MkdirAll(o.specs, 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { o.cleanup() })
	return o
}

// name returns this test's name for bottle b.
func (e *env) name(b string) string { return e.tag + "-" + b }

func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SMOLVM_") || strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out,
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SMOLVM_DATA_DIR="+e.data,
		"XDG_CACHE_HOME="+filepath.Join(e.root, "cache"),
	)
	return append(out, e.extraEnv...)
}

// result is one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// commonFlags are the flags every bottle command of this world takes.
func (e *env) commonFlags() []string {
	return []string{"--state-dir", e.state, "--instance", e.instance, "--subnet-pool", e.pool, "--log-format", "json"}
}

// cmd builds a command line: sub is "" for the default command, flags go
// after it, then the spec directory when dir is set.
func (e *env) command(ctx context.Context, sub string, args ...string) *exec.Cmd {
	var argv []string
	if sub != "" {
		argv = append(argv, sub)
	}
	argv = append(argv, e.commonFlags()...)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, reconBin, argv...)
	cmd.Env = e.environ()
	cmd.Dir = e.root
	return cmd
}

// run runs the binary to its end (at most two minutes).
func (e *env) run(sub string, args ...string) result {
	e.t.Helper()
	return e.runEnv(nil, sub, args...)
}

func (e *env) runEnv(extra []string, sub string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, sub, args...)
	extra = e.emuFaults(extra)
	defer e.emuFaults(nil)
	cmd.Env = append(cmd.Env, extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{code: -1, stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatalf("run bottle-reconcile %s %v: %v", sub, args, err)
	}
	if ctx.Err() != nil {
		e.t.Fatalf("bottle-reconcile %s %v did not finish within 2 minutes\n%s", sub, args, r)
	}
	return r
}

// emuFaults writes the SMOLVM_EMU_* settings among extra to the emulator's
// settings file, since bottle-reconcile runs smolvm with a minimal
// environment that never carries them, and returns the rest; nil clears
// the file.
func (e *env) emuFaults(extra []string) []string {
	e.t.Helper()
	var faults, rest []string
	for _, kv := range extra {
		if strings.HasPrefix(kv, "SMOLVM_EMU_") {
			faults = append(faults, kv)
		} else {
			rest = append(rest, kv)
		}
	}
	path := filepath.Join(e.data, "emu", "faults.env")
	if len(faults) == 0 {
		if extra == nil {
			_ = os.Remove(path)
		}
		return rest
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(faults, "\n")+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return rest
}

// runNoFatal is run for other goroutines: it never calls t.Fatal.
func (e *env) runNoFatal(sub string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, sub, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{code: -1, stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if err != nil && r.code == -1 {
		r.stderr += "\n(run: " + err.Error() + ")"
	}
	return r
}

// once runs one pass over the spec directory.
func (e *env) once(args ...string) result {
	e.t.Helper()
	return e.run("", append(append([]string{"--once"}, args...), e.specs)...)
}

// mustOnce runs one pass and fails the test unless it exits 0.
func (e *env) mustOnce(args ...string) result {
	e.t.Helper()
	r := e.once(args...)
	if r.code != 0 {
		e.t.Fatalf("--once: want exit 0\n%s", r)
	}
	return r
}

// bottleSpec is what the tests vary in a spec file.
type bottleSpec struct {
	Env         map[string]string
	EnvFromHost []string
	Subnet      string
	Protect     bool
	Extra       string // raw YAML lines appended under spec:
}

func (b bottleSpec) yaml(name string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata:\n  name: %s\nspec:\n  image: %s\n", name, testImage)
	if len(b.Env) > 0 {
		s.WriteString("  env:\n")
		keys := make([]string, 0, len(b.Env))
		for k := range b.Env {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&s, "    %s: %q\n", k, b.Env[k])
		}
	}
	if len(b.EnvFromHost) > 0 {
		fmt.Fprintf(&s, "  envFromHost: [%s]\n", strings.Join(b.EnvFromHost, ", "))
	}
	if b.Subnet != "" {
		fmt.Fprintf(&s, "  network: {subnet: %s}\n", b.Subnet)
	}
	if b.Protect {
		s.WriteString("  protect: true\n")
	}
	s.WriteString(b.Extra)
	return s.String()
}

// file returns the path of bottle b's spec file.
func (e *env) file(b string) string { return filepath.Join(e.specs, b+".yaml") }

// write writes bottle b's spec file (bottle name e.name(b)).
func (e *env) write(b string, s bottleSpec) {
	e.t.Helper()
	e.writeRaw(b, s.yaml(e.name(b)))
}

func (e *env) writeRaw(b, content string) {
	e.t.Helper()
	if err := os.WriteFile(e.file(b), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) remove(b string) {
	e.t.Helper()
	if err := os.Remove(e.file(b)); err != nil {
		e.t.Fatal(err)
	}
}

// --- Docker ---

func ctxT() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func instanceFilter(instance string, more ...filters.KeyValuePair) filters.Args {
	return filters.NewArgs(append([]filters.KeyValuePair{filters.Arg("label", labelInstance+"="+instance)}, more...)...)
}

// containers lists this instance's containers, by name.
func (e *env) containers() map[string]container.Summary {
	e.t.Helper()
	ctx, cancel := ctxT()
	defer cancel()
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: instanceFilter(e.instance)})
	if err != nil {
		e.t.Fatalf("list containers: %v", err)
	}
	out := map[string]container.Summary{}
	for _, c := range cs {
		out[strings.TrimPrefix(c.Names[0], "/")] = c
	}
	return out
}

// networks lists this instance's networks, by name.
func (e *env) networks() map[string]network.Summary {
	e.t.Helper()
	ctx, cancel := ctxT()
	defer cancel()
	ns, err := docker.NetworkList(ctx, network.ListOptions{Filters: instanceFilter(e.instance)})
	if err != nil {
		e.t.Fatalf("list networks: %v", err)
	}
	out := map[string]network.Summary{}
	for _, n := range ns {
		if _, dup := out[n.Name]; dup {
			// Docker allows two networks of one name: a doubled create.
			e.t.Errorf("two networks named %s (%s and %s)", n.Name, out[n.Name].ID, n.ID)
		}
		out[n.Name] = n
	}
	return out
}

func (e *env) inspect(name string) container.InspectResponse {
	e.t.Helper()
	ctx, cancel := ctxT()
	defer cancel()
	c, err := docker.ContainerInspect(ctx, name)
	if err != nil {
		e.t.Fatalf("inspect %s: %v", name, err)
	}
	return c
}

func netName(bottle string) string    { return "bottle-" + bottle }
func bundleName(bottle string) string { return "bottle-" + bottle + "-bundle" }
func guestName(bottle string) string  { return "bottle-" + bottle }
func egressName(instance string) string {
	return "bottle-egress-" + instance // internal/dockerx/egress.go
}

// ids is a snapshot of the instance's Docker objects: name → ID.
// assertUnchanged checks that nothing changed since before (Docker object
// IDs) and call nCalls: no smolvm call that changes a machine, and the same
// Docker objects.
func (e *env) assertUnchanged(before map[string]string, nCalls int) {
	e.t.Helper()
	if m := mutations(e.calls()[nCalls:]); len(m) > 0 {
		e.t.Errorf("smolvm called to change machines: %v", m)
	}
	if after := e.ids(); !maps.Equal(before, after) {
		e.t.Errorf("Docker objects changed:\nbefore %v\nafter  %v", before, after)
	}
}

func (e *env) ids() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for n, c := range e.containers() {
		out["container/"+n] = c.ID
	}
	for n, nw := range e.networks() {
		out["network/"+n] = nw.ID
	}
	return out
}

// bundleIP returns the bundle's address on its bottle network.
func (e *env) bundleIP(bottle string) string {
	e.t.Helper()
	c := e.inspect(bundleName(bottle))
	if ep := c.NetworkSettings.Networks[netName(bottle)]; ep != nil {
		return ep.IPAddress
	}
	return ""
}

// subnetOf returns the IPv4 subnet of the bottle's network.
func (e *env) subnetOf(bottle string) string {
	e.t.Helper()
	n, ok := e.networks()[netName(bottle)]
	if !ok {
		e.t.Fatalf("network %s missing", netName(bottle))
	}
	for _, c := range n.IPAM.Config {
		if !strings.Contains(c.Subnet, ":") {
			return c.Subnet
		}
	}
	return ""
}

// --- the emulator ---

type machine struct {
	Name   string            `json:"name"`
	State  string            `json:"state"`
	PID    *int              `json:"pid"`
	Labels map[string]string `json:"labels"`
}

// smolvm runs the emulator with this world's data directory.
func (e *env) smolvm(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(binDir, "smolvm"), args...)
	cmd.Env = e.environ()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("smolvm %v: %w: %s", args, err, errb.String())
	}
	return out, nil
}

// machines lists this instance's machines, by name.
func (e *env) machines() map[string]machine {
	e.t.Helper()
	out, err := e.smolvm("machine", "ls", "--json")
	if err != nil {
		e.t.Fatal(err)
	}
	var ms []machine
	if err := json.Unmarshal(out, &ms); err != nil {
		e.t.Fatalf("machine ls --json: %v\n%s", err, out)
	}
	res := map[string]machine{}
	for _, m := range ms {
		if m.Labels[labelInstance] == e.instance {
			res[m.Name] = m
		}
	}
	return res
}

type call struct {
	PID  int      `json:"pid"`
	Args []string `json:"args"`
}

// op is "create", "delete", ... for `machine OP`, else "".
func (c call) op() string {
	if len(c.Args) >= 2 && (c.Args[0] == "machine" || c.Args[0] == "vm") {
		return c.Args[1]
	}
	return ""
}

// target is the --name/-n argument of the call.
func (c call) target() string {
	for i, a := range c.Args {
		if (a == "--name" || a == "-n") && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
	}
	return ""
}

// values returns the value of every occurrence of flag, in order.
func (c call) values(flag string) []string {
	var out []string
	for i, a := range c.Args {
		if a == flag && i+1 < len(c.Args) {
			out = append(out, c.Args[i+1])
		}
	}
	return out
}

func (c call) has(args ...string) bool {
	for i := 0; i+len(args) <= len(c.Args); i++ {
		if slices.Equal(c.Args[i:i+len(args)], args) {
			return true
		}
	}
	return false
}

func (e *env) callsFile() string { return filepath.Join(e.data, "emu", "calls.jsonl") }

// calls returns every emulator call so far.
func (e *env) calls() []call {
	e.t.Helper()
	b, err := os.ReadFile(e.callsFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var out []call
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			e.t.Fatalf("calls.jsonl: %v: %s", err, sc.Bytes())
		}
		out = append(out, c)
	}
	return out
}

// mutations returns the create/delete/start/stop calls among cs naming
// one of names (any name when names is empty).
func mutations(cs []call, names ...string) []call {
	var out []call
	for _, c := range cs {
		switch c.op() {
		case "create", "delete", "rm", "start", "stop":
			if len(names) == 0 || slices.Contains(names, c.target()) {
				out = append(out, c)
			}
		}
	}
	return out
}

// --- logs ---

// opLine is one "operation done" (or failed) line of the JSON log.
type opLine struct {
	Msg      string `json:"msg"`
	Bottle   string `json:"bottle"`
	Resource string `json:"resource"`
	Role     string `json:"role"`
	Action   string `json:"action"`
}

func (o opLine) String() string { return o.Action + " " + o.Role }

// ops parses the operation lines of stderr, for bottle (all when "").
func ops(t *testing.T, stderr, bottle string) []opLine {
	t.Helper()
	var out []opLine
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var o opLine
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("stderr line is not JSON: %v: %s", err, l)
		}
		if o.Action == "" || (bottle != "" && o.Bottle != bottle) {
			continue
		}
		out = append(out, o)
	}
	return out
}

func opStrings(os []opLine) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.String()
	}
	return out
}

// --- assertions ---

// assertBottle checks that bottle b exists exactly once and is up: its
// network, a running bundle at .2 of the network's subnet, and a
// running machine whose create argv locks its egress to the bundle.
func (e *env) assertBottle(b string) {
	e.t.Helper()
	nets, cs, ms := e.networks(), e.containers(), e.machines()
	if _, ok := nets[netName(b)]; !ok {
		e.t.Errorf("bottle %s: network %s missing", b, netName(b))
		return
	}
	c, ok := cs[bundleName(b)]
	if !ok {
		e.t.Errorf("bottle %s: bundle %s missing", b, bundleName(b))
		return
	}
	if c.State != "running" || strings.Contains(c.Status, "health") {
		e.t.Errorf("bottle %s: bundle is %s / %q, want running, with no Docker health check", b, c.State, c.Status)
	}
	ip := e.bundleIP(b)
	subnet := e.subnetOf(b)
	if want := bundleAddr(subnet); ip != want {
		e.t.Errorf("bottle %s: bundle at %q, want %s (.2 of %s)", b, ip, want, subnet)
	}
	if !strings.HasPrefix(subnet, e.poolNet+".") {
		e.t.Errorf("bottle %s: subnet %s is outside the pool %s", b, subnet, e.pool)
	}
	m, ok := ms[guestName(b)]
	if !ok {
		e.t.Errorf("bottle %s: machine %s missing", b, guestName(b))
		return
	}
	if m.State != "running" {
		e.t.Errorf("bottle %s: machine is %s, want running", b, m.State)
	}
	var create *call
	for _, c := range e.calls() {
		if c.op() == "create" && c.target() == guestName(b) {
			create = &c
		}
	}
	if create == nil {
		e.t.Errorf("bottle %s: no machine create call", b)
		return
	}
	// Exactly the bundle, nothing broader: these specs set no allowCIDRs.
	if got := create.values("--allow-cidr"); !slices.Equal(got, []string{ip + "/32"}) {
		e.t.Errorf("bottle %s: create --allow-cidr %q, want exactly [%s/32]: %q", b, got, ip, create.Args)
	}
	if got := create.values("--dns"); !slices.Equal(got, []string{ip}) {
		e.t.Errorf("bottle %s: create --dns %q, want exactly [%s]: %q", b, got, ip, create.Args)
	}
	if m.Labels["dev.bottle-reconcile.bundle-addr"] != ip {
		e.t.Errorf("bottle %s: machine's bundle-addr label %q, want %s", b, m.Labels["dev.bottle-reconcile.bundle-addr"], ip)
	}
}

// bundleAddr returns .2 of a subnet, the bundle's pinned address.
func bundleAddr(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return "invalid subnet " + cidr
	}
	return p.Masked().Addr().Next().Next().String()
}

// assertGone checks that nothing of bottle b remains.
func (e *env) assertGone(b string) {
	e.t.Helper()
	if _, ok := e.networks()[netName(b)]; ok {
		e.t.Errorf("bottle %s: network still exists", b)
	}
	if _, ok := e.containers()[bundleName(b)]; ok {
		e.t.Errorf("bottle %s: bundle still exists", b)
	}
	if _, ok := e.machines()[guestName(b)]; ok {
		e.t.Errorf("bottle %s: machine still exists", b)
	}
}

// assertCounts checks the instance has exactly these many bottle networks,
// bundles and machines (the egress network aside).
func (e *env) assertCounts(n int) {
	e.t.Helper()
	nets := 0
	for name, nw := range e.networks() {
		if name != egressName(e.instance) {
			nets++
			if nw.Labels[labelRole] != "network" {
				e.t.Errorf("network %s has role %q", name, nw.Labels[labelRole])
			}
		}
	}
	if got, cs, ms := nets, len(e.containers()), len(e.machines()); got != n || cs != n || ms != n {
		e.t.Errorf("want %d networks, bundles and machines; have %d, %d, %d", n, got, cs, ms)
	}
}

// cleanup tears the instance down with the product, then reports and
// removes anything carrying the instance label that it left behind.
func (e *env) cleanup() {
	t := e.t
	if docker == nil || dockerErr != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, "down", "--all", "--force", "--dir", e.specs)
	out, err := cmd.CombinedOutput()
	if err != nil && !t.Failed() {
		t.Errorf("cleanup: down --all --force: %v\n%s", err, out)
	}
	var leaks []string
	cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: instanceFilter(e.instance)})
	for _, c := range cs {
		leaks = append(leaks, "container "+c.Names[0])
		_ = docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
	ns, _ := docker.NetworkList(ctx, network.ListOptions{Filters: instanceFilter(e.instance)})
	for _, n := range ns {
		leaks = append(leaks, "network "+n.Name)
		_ = docker.NetworkRemove(ctx, n.ID)
	}
	if b, err := e.smolvm("machine", "ls", "--json"); err == nil {
		var ms []machine
		_ = json.Unmarshal(b, &ms)
		for _, m := range ms {
			if m.Labels[labelInstance] == e.instance {
				leaks = append(leaks, "machine "+m.Name)
				_, _ = e.smolvm("machine", "delete", "-f", "--name", m.Name)
			}
		}
	}
	if len(leaks) > 0 {
		t.Errorf("cleanup: down --all --force left %s", strings.Join(leaks, ", "))
	}
	// Check once more, after the forced removal: nothing may remain.
	cs, _ = docker.ContainerList(ctx, container.ListOptions{All: true, Filters: instanceFilter(e.instance)})
	ns, _ = docker.NetworkList(ctx, network.ListOptions{Filters: instanceFilter(e.instance)})
	if len(cs)+len(ns) > 0 {
		t.Errorf("cleanup: %d containers and %d networks of instance %s could not be removed", len(cs), len(ns), e.instance)
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sameKeys[V any](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
