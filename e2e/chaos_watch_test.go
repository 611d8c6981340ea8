package e2e

import (
	"fmt"
	"os"
	"path/filepath"
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
	w := c.e.start(nil, "", "--debounce", "200ms", "--resync", "10s", c.e.specs)
	c.watcher = w.cmd.Process.Pid
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
}

type churnOp struct {
	name string
	do   func(c *chaos) string
}

func (c *chaos) churnOps() []churnOp {
	return []churnOp{
		{"valid rewrite", func(c *chaos) string {
			b := c.pick("")
			c.gen++
			c.bottles[b].Env["GEN"] = fmt.Sprint(c.gen)
			c.write(b)
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
