package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The watcher under spec churn: rounds of random edits with no pause
// between them (valid and invalid rewrites, renames, deletes and restores,
// the directory removed and recreated, a ConfigMap-style ..data swap), then
// the last valid state is put back and the watcher alone must converge to
// it within watchSettle, every invariant holding.
const watchSettle = 60 * time.Second

func TestChaosWatch(t *testing.T) {
	if *chaosFaults <= 0 {
		t.Skip("fault injection runs through scripts/chaos (-chaos.faults N)")
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rounds := max(1, *chaosFaults/4)
	t.Logf("chaos watch: seed %d, %d rounds (rerun: scripts/chaos -seed %d -faults %d)", seed, rounds, seed, *chaosFaults)
	c := newChaos(t, seed)
	metrics := freeAddr(t)
	w := c.e.start(nil, "", "--debounce", "200ms", "--resync", "10s", "--metrics-addr", metrics, c.e.specs)
	c.watcher = w.cmd.Process.Pid
	base := c.restingFootprint(w, metrics)
	t.Logf("watcher at rest before the churn: %s", base)
	t.Cleanup(func() {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		if !w.exited(30 * time.Second) {
			t.Errorf("the watcher did not stop within 30s of SIGTERM")
		}
	})
	ops := c.churnOps()
	for i := 1; i <= rounds; i++ {
		var did []string
		for range 3 + c.rng.IntN(5) {
			op := ops[c.rng.IntN(len(ops))]
			did = append(did, op.name+" "+op.do(c))
			c.sleepUpTo(300 * time.Millisecond)
		}
		c.restoreAll()
		start := time.Now()
		var bad []string
		for {
			bad = c.invariants()
			// Converged means nothing left to do, not merely all up: a
			// rewritten spec's bottle must have been replaced.
			if r := c.e.runNoFatal("plan", "--detailed-exitcode", c.e.specs); r.code != 0 {
				bad = append(bad, fmt.Sprintf("plan still has work (exit %d): %s", r.code, r.stdout))
			}
			if len(bad) == 0 || time.Since(start) > watchSettle {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if len(bad) > 0 {
			t.Errorf("round %d of seed %d (%s): not converged within %s: %s\nwatcher log:\n%s", i, seed, strings.Join(did, ", "), watchSettle, strings.Join(bad, "; "), w.err.String())
			return
		}
		t.Logf("round %d: %s: converged in %s", i, strings.Join(did, ", "), time.Since(start).Round(100*time.Millisecond))
	}
	if *chaosDockerd {
		c.dockerdOutage(w, 12*time.Second)
	}
	end := c.restingFootprint(w, metrics)
	t.Logf("watcher at rest after %d rounds: %s", rounds, end)
	if leak := end.leakedSince(base); leak != "" {
		t.Errorf("the watcher leaks across passes: %s (before %s, after %s)", leak, base, end)
	}
}

// dockerdOutage stops dockerd for d (longer than the watcher's resync),
// checks that the watcher outlives it, starts dockerd again and waits for
// the world to converge.
func (c *chaos) dockerdOutage(w *background, d time.Duration) {
	if out, err := exec.Command("pkill", "-TERM", "-x", "dockerd").CombinedOutput(); err != nil {
		c.t.Fatalf("stop dockerd: %v %s", err, out)
	}
	time.Sleep(d)
	if w.exited(0) {
		c.t.Fatalf("the watcher exited while dockerd was down:\n%s", w.err.String())
	}
	if out, err := exec.Command("../scripts/docker-up").CombinedOutput(); err != nil {
		c.t.Fatalf("restart dockerd: %v\n%s", err, out)
	}
	start := time.Now()
	for {
		bad := c.invariants()
		if r := c.e.runNoFatal("plan", "--detailed-exitcode", c.e.specs); r.code != 0 {
			bad = append(bad, fmt.Sprintf("plan still has work (exit %d): %s", r.code, r.stdout))
		}
		if len(bad) == 0 {
			c.t.Logf("dockerd stopped for %s: the watcher lived through it and converged %s after the restart", d, time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > watchSettle {
			c.t.Errorf("after dockerd was stopped for %s: not converged within %s: %s\nwatcher log:\n%s", d, watchSettle, strings.Join(bad, "; "), w.err.String())
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// footprint is what a watcher holds: goroutines and open files (from its
// own metrics) and child processes (from the kernel).
type footprint struct{ goroutines, fds, children int }

func (f footprint) String() string {
	return fmt.Sprintf("%d goroutines, %d open files, %d child processes", f.goroutines, f.fds, f.children)
}

// leakedSince says what grew beyond what a pass in flight can explain.
func (f footprint) leakedSince(base footprint) string {
	var out []string
	if f.goroutines > base.goroutines+10 {
		out = append(out, fmt.Sprintf("%d more goroutines", f.goroutines-base.goroutines))
	}
	if f.fds > base.fds+5 {
		out = append(out, fmt.Sprintf("%d more open files", f.fds-base.fds))
	}
	if f.children > 0 {
		out = append(out, fmt.Sprintf("%d child processes at rest", f.children))
	}
	return strings.Join(out, ", ")
}

// restingFootprint waits for the watcher to be ready, then takes the least
// of a few samples a second apart, so a pass in flight does not count.
func (c *chaos) restingFootprint(w *background, addr string) footprint {
	deadline := time.Now().Add(watchSettle)
	for !ready(addr) {
		if time.Now().After(deadline) || w.exited(0) {
			c.t.Fatalf("the watcher never became ready:\n%s", w.err.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var least footprint
	for i := range 5 {
		time.Sleep(time.Second)
		f, err := sampleFootprint(addr, w.cmd.Process.Pid)
		if err != nil {
			c.t.Fatalf("sample the watcher: %v", err)
		}
		if i == 0 {
			least = f
		}
		least = footprint{min(least.goroutines, f.goroutines), min(least.fds, f.fds), min(least.children, f.children)}
	}
	return least
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func sampleFootprint(addr string, pid int) (footprint, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return footprint{}, err
	}
	defer resp.Body.Close()
	var f footprint
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			f.goroutines, found = int(n), found+1
		case "process_open_fds":
			f.fds, found = int(n), found+1
		}
	}
	if found != 2 {
		return footprint{}, fmt.Errorf("/metrics has no go_goroutines or process_open_fds")
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		f.children += len(strings.Fields(string(b)))
	}
	return f, nil
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type churnOp struct {
	name string
	do   func(c *chaos) string
}

func (c *chaos) churnOps() []churnOp {
	return []churnOp{
		{"valid rewrite", func(c *chaos) string {
			b := c.pick("")
			c.edit(b)
			return b
		}},
		{"invalid rewrite", func(c *chaos) string {
			b := c.pick("")
			c.e.writeRaw(b, "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata:\n  name: "+c.e.name(b)+"\nspec: {image: 7}\n")
			return b
		}},
		{"half-written file", func(c *chaos) string {
			b := c.pick("")
			c.e.writeRaw(b, "apiVersion: bottle-reconcile/v1alpha1\nkind: Bot")
			return b
		}},
		{"rename", func(c *chaos) string {
			b := c.pick("")
			if err := os.Rename(c.e.file(b), filepath.Join(c.e.specs, "renamed-"+b+".yml")); err != nil {
				return b + " (already moved)"
			}
			return b
		}},
		{"delete", func(c *chaos) string {
			b := c.pick("")
			_ = os.Remove(c.e.file(b))
			return b
		}},
		{"directory removed and recreated", func(c *chaos) string {
			if err := os.RemoveAll(c.e.specs); err != nil {
				c.t.Fatal(err)
			}
			time.Sleep(time.Duration(c.rng.IntN(500)) * time.Millisecond)
			if err := os.MkdirAll(c.e.specs, 0o755); err != nil {
				c.t.Fatal(err)
			}
			return ""
		}},
		{"ConfigMap ..data swap", func(c *chaos) string {
			c.configMapSwap()
			return ""
		}},
	}
}

// restoreAll puts back exactly the specs of c.bottles, as plain files,
// removing whatever the churn left.
func (c *chaos) restoreAll() {
	entries, err := os.ReadDir(c.e.specs)
	if err != nil && !os.IsNotExist(err) {
		c.t.Fatal(err)
	}
	if err := os.MkdirAll(c.e.specs, 0o755); err != nil {
		c.t.Fatal(err)
	}
	for _, en := range entries {
		if err := os.RemoveAll(filepath.Join(c.e.specs, en.Name())); err != nil {
			c.t.Fatal(err)
		}
	}
	for b := range c.bottles {
		c.write(b)
	}
}

// configMapSwap turns the spec directory into what a Kubernetes ConfigMap
// mount looks like (each file a link through ..data into a timestamped
// directory) and swaps ..data to a new generation, as the kubelet does.
func (c *chaos) configMapSwap() {
	gen := filepath.Join(c.e.specs, fmt.Sprintf("..%d", time.Now().UnixNano()))
	if err := os.MkdirAll(gen, 0o755); err != nil {
		c.t.Fatal(err)
	}
	for b := range c.bottles {
		if err := os.WriteFile(filepath.Join(gen, b+".yaml"), []byte(c.specYAML(b)), 0o644); err != nil {
			c.t.Fatal(err)
		}
		link := c.e.file(b)
		if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
			_ = os.Remove(link)
		}
		_ = os.Symlink(filepath.Join("..data", b+".yaml"), link)
	}
	tmp := filepath.Join(c.e.specs, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.e.specs, "..data")); err != nil {
		c.t.Fatal(err)
	}
}
