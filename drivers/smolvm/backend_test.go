package smolvm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/go-logr/logr/testr"
)

// The same test functions run against two backends: the emulator from
// cmd/smolvm-emulator (always), and a real smolvm whenever one is on PATH
// with a usable /dev/kvm (skipped with the reason otherwise).

var (
	// emulatorDir holds the emulator built as "smolvm"; TestMain puts it
	// first on PATH so the driver's default Binary finds it.
	emulatorDir      string
	emulatorBuildErr error
	// realSmolvm is the smolvm found on PATH before the emulator shadowed it.
	realSmolvm    string
	realSkipCause string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	realSmolvm, realSkipCause = findRealSmolvm()
	dir, err := os.MkdirTemp("", "smolvm-emulator-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "smolvm tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "smolvm"),
		"github.com/bottle-reconcile/bottle-reconcile/cmd/smolvm-emulator")
	if out, err := cmd.CombinedOutput(); err != nil {
		emulatorBuildErr = fmt.Errorf("build smolvm emulator: %v\n%s", err, out)
	} else {
		emulatorDir = dir
		os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return m.Run()
}

// findRealSmolvm says whether the real-smolvm variant may run, and why not.
// It runs whenever smolvm is on PATH (looked up before the emulator is put
// first) and can boot VMs.
func findRealSmolvm() (path, skip string) {
	p, err := exec.LookPath("smolvm")
	if err != nil {
		return "", "no real smolvm on PATH (install smolvm >= 1.8 to run these tests against it; the emulator variant always runs)"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Sprintf("smolvm is on PATH (%s) but /dev/kvm is not usable: %v", p, err)
	}
	f.Close()
	if os.Getenv("BOTTLE_SMOLVM_IMAGE") == "" {
		// A registry image cannot be pulled at first start under the
		// bundle-only egress policy the driver sets (CONTRACT.md).
		return "", fmt.Sprintf("smolvm is on PATH (%s) but BOTTLE_SMOLVM_IMAGE is unset: set it to a `docker save` archive path (./x.tar or /abs/x.tar)", p)
	}
	return p, ""
}

// backend is one smolvm to test against.
type backend struct {
	emulated bool
	binary   string   // "" means the driver default, "smolvm" from PATH
	env      []string // the environment for direct CLI calls, with this test's data dir
	dataDir  string
	image    string // a local image archive the backend can create from
	// hostLayer turns the host layer on in drivers made by driver().
	hostLayer bool
}

// eachBackend runs fn as a parallel subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Parallel()
	t.Run("emulator", func(t *testing.T) {
		t.Parallel()
		if emulatorBuildErr != nil {
			t.Fatal(emulatorBuildErr)
		}
		fn(t, newBackend(t, true))
	})
	t.Run("real", func(t *testing.T) {
		if realSmolvm == "" {
			t.Skip(realSkipCause)
		}
		fn(t, newBackend(t, false))
	})
}

// emulatorOnly skips what only the emulator can do (fault injection,
// calls.jsonl).
func (b *backend) emulatorOnly(t *testing.T, why string) {
	t.Helper()
	if !b.emulated {
		t.Skip("emulator only: " + why)
	}
}

func newBackend(t *testing.T, emulated bool) *backend {
	dataDir := t.TempDir()
	b := &backend{
		emulated: emulated,
		env:      append(os.Environ(), "SMOLVM_DATA_DIR="+dataDir),
		dataDir:  dataDir,
	}
	if !emulated {
		b.binary = realSmolvm
		b.image = os.Getenv("BOTTLE_SMOLVM_IMAGE")
		return b
	}
	// The emulator only hashes and stages the archive; its bytes are free.
	b.image = filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(b.image, []byte("archive "+randHex(t, 8)), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// lookup is the reconciler's environment as this backend's driver sees it:
// this process's, with the test's own SMOLVM_DATA_DIR.
func (b *backend) lookup(k string) (string, bool) {
	if k == "SMOLVM_DATA_DIR" {
		return b.dataDir, true
	}
	return os.LookupEnv(k)
}

// driver returns a Driver on this backend; extraEnv (fault injection) is
// added to smolvm's environment for every call it makes.
func (b *backend) driver(t *testing.T, opts Options, extraEnv ...string) *Driver {
	t.Helper()
	opts.Binary = b.binary
	// The host layer changes the host's firewall and cgroups: only the
	// tests about it (hostlayer_test.go) turn it on.
	opts.NoHostLayer = !b.hostLayer
	if opts.Images == nil {
		// smolvm is always given an archive: the emulator takes any file,
		// a real smolvm gets the image from the host's Docker.
		opts.Images = &fakeImages{anyRef: true}
		if !b.emulated {
			opts.Images = NewDockerImages(dockerClient(t), testr.New(t))
		}
	}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	d, err := New(testr.New(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	bin := b.binary
	if bin == "" {
		bin = DefaultBinary
	}
	d.run = execRunner{binary: bin, lookup: b.lookup, testEnv: extraEnv}
	return d
}

// smolvm runs the backend's CLI directly, outside the driver.
func (b *backend) smolvm(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := b.binary
	if bin == "" {
		bin = DefaultBinary
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = b.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("smolvm %q: %v", args, err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// want returns a Want for a fresh, uniquely named bottle and registers a
// cleanup that deletes its machine whatever happens.
func (b *backend) want(t *testing.T) bottle.Want {
	t.Helper()
	bottleName := "t" + randHex(t, 5)
	w := testWant()
	w.Bottle = bottleName
	w.Name = bottle.Names(bottleName, bottle.RoleGuest)
	w.Labels = ourLabels(bottleName, "test-"+randHex(t, 4), "h"+randHex(t, 4))
	w.Guest.Image = b.image
	withEnv(&w, map[string]string{"API_TOKEN": secretToken, "EMPTY": ""}, nil)
	b.cleanup(t, w.Name)
	return w
}

// cleanup deletes machine name at the end of the test; a machine already
// gone is fine.
func (b *backend) cleanup(t *testing.T, name string) {
	t.Cleanup(func() {
		_, stderr, code := b.smolvm(t, "machine", "delete", "--name", name, "-f")
		if code != 0 && !strings.Contains(stderr, "vm not found") {
			t.Errorf("cleanup: delete %s: exit %d: %s", name, code, stderr)
		}
	})
}

// calls returns the argv of every emulator invocation so far.
func (b *backend) calls(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for _, c := range recordedCalls(t, b.dataDir) {
		out = append(out, c.args)
	}
	return out
}

// recordedCall is one line of the emulator's calls.jsonl.
type recordedCall struct {
	args, env []string
}

// recordedCalls reads argv and environment of every emulator call in data.
func recordedCalls(t *testing.T, data string) []recordedCall {
	t.Helper()
	f, err := os.Open(filepath.Join(data, "emu", "calls.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recordedCall
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("calls.jsonl: %v", err)
		}
		out = append(out, recordedCall{rec.Args, rec.Env})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// emu runs one of the emulator's hidden __emu commands (kill, freeze).
func (b *backend) emu(t *testing.T, args ...string) {
	t.Helper()
	if _, stderr, code := b.smolvm(t, append([]string{"__emu"}, args...)...); code != 0 {
		t.Fatalf("__emu %q: exit %d: %s", args, code, stderr)
	}
}

// countCalls counts the emulator invocations whose argv starts with prefix.
func (b *backend) countCalls(t *testing.T, prefix ...string) int {
	n := 0
	for _, args := range b.calls(t) {
		if len(args) >= len(prefix) && strings.Join(args[:len(prefix)], "\x00") == strings.Join(prefix, "\x00") {
			n++
		}
	}
	return n
}

// processesOf lists the PIDs whose environment names this backend's data
// dir, i.e. every smolvm process (and VMM) of this test.
func (b *backend) processesOf(t *testing.T) []int {
	t.Helper()
	marker := []byte("SMOLVM_DATA_DIR=" + b.dataDir + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, marker) {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// observeOne observes and returns the resource named name, failing when it
// is missing.
func observeOne(t *testing.T, d *Driver, name string) bottle.Resource {
	t.Helper()
	rs, err := d.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("Observe: no %s in %+v", name, rs)
	return bottle.Resource{}
}

// eventually polls cond for up to d, for states that settle asynchronously
// (a killed VMM is reaped a moment later).
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
