package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
)

// The fault-injection suite: faults injected for real, at random points,
// from a seed, with every invariant checked after each one. scripts/chaos
// runs it (a short run in CI, a long one on demand); a failure prints the
// seed and fault number that replay it.
var (
	chaosFaults  = flag.Int("chaos.faults", 0, "TestChaos: how many faults to inject (0 skips it; scripts/chaos sets it)")
	chaosSeed    = flag.Uint64("chaos.seed", 0, "TestChaos: the seed of the faults (0 picks one and prints it)")
	chaosDockerd = flag.Bool("chaos.dockerd", false, "TestChaos: also kill -9 and restart dockerd (nothing else may use Docker meanwhile)")
	chaosReport  = flag.String("chaos.report", "", "TestChaos: write what ran and what broke, as JSON, to this file")
	chaosOnly    = flag.String("chaos.only", "", "TestChaos: inject only the faults whose name matches this regular expression")
)

// healPasses bounds convergence once faults stop: this many --once runs
// (each passes again while a bundle starts) must reach exit 0.
const healPasses = 3

// A fault breaks the world and says what it did.
type fault struct {
	name   string
	inject func(c *chaos) string
}

// chaos is the suite's world: one instance, its bottles, and canaries that
// belong to nobody it may touch.
type chaos struct {
	t       *testing.T
	e       *env
	rng     *rand.Rand
	bottles map[string]bottleSpec // by short name; a spec file exists for each
	foreign map[string]string     // canary kind/name -> Docker ID
	image   string                // the docker guests' image
	gen     int                   // bumps env values, so edits always change something
	watcher int                   // the pid of a watcher the test runs, if any
}

func TestChaos(t *testing.T) {
	if *chaosFaults <= 0 {
		t.Skip("fault injection runs through scripts/chaos (-chaos.faults N)")
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("chaos: seed %d, %d faults (rerun: scripts/chaos -seed %d -faults %d)", seed, *chaosFaults, seed, *chaosFaults)
	only, err := regexp.Compile(*chaosOnly)
	if err != nil {
		t.Fatalf("-chaos.only: %v", err)
	}
	c := newChaos(t, seed)
	var faults []fault
	for _, f := range c.faults() {
		if only.MatchString(f.name) {
			faults = append(faults, f)
		}
	}
	if len(faults) == 0 {
		t.Fatalf("-chaos.only %q matches no fault", *chaosOnly)
	}
	stats := map[string]*faultStats{}
	for _, f := range faults {
		stats[f.name] = &faultStats{Passes: map[int]int{}}
	}
	for i := 1; i <= *chaosFaults; i++ {
		f := faults[c.rng.IntN(len(faults))]
		what := f.inject(c)
		passes, bad := c.settle()
		st := stats[f.name]
		st.Runs++
		st.Passes[passes]++
		if len(bad) > 0 {
			st.Violations = append(st.Violations, fmt.Sprintf("fault %d (%s): %s", i, what, strings.Join(bad, "; ")))
			t.Errorf("fault %d of seed %d, %s: %s\n  invariants broken: %s", i, seed, f.name, what, strings.Join(bad, "\n  "))
		} else {
			t.Logf("fault %d: %s: %s: invariants hold after %d pass(es)", i, f.name, what, passes)
		}
	}
	c.writeReport(seed, stats)
}

type faultStats struct {
	Runs int `json:"runs"`
	// Passes counts the faults by how many --once passes it took until a
	// pass exited 0 with every invariant holding (healPasses+1: never).
	Passes     map[int]int `json:"passesToSettle"`
	Violations []string    `json:"violations"`
}

func newChaos(t *testing.T, seed uint64) *chaos {
	e := newEnv(t)
	c := &chaos{t: t, e: e, rng: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)), bottles: map[string]bottleSpec{}, foreign: map[string]string{}}
	c.image = "bottle-chaos-agent:" + e.tag
	dockertest.BuildBusyboxImage(t, docker, c.image, map[string]string{labelInstance: e.instance})
	t.Cleanup(func() {
		ctx, cancel := ctxT()
		defer cancel()
		if _, err := docker.ImageRemove(ctx, c.image, image.RemoveOptions{Force: true}); err != nil {
			t.Logf("remove image %s: %v", c.image, err)
		}
	})
	c.stateFS()
	c.canaries()
	for _, b := range []string{"s1", "s2"} {
		c.bottles[b] = bottleSpec{Env: map[string]string{"GEN": "0"}}
	}
	c.bottles["d1"] = bottleSpec{Env: map[string]string{"GEN": "0"}, Extra: "  guest: docker\n  image: " + c.image + "\n"}
	for b := range c.bottles {
		c.write(b)
	}
	if _, bad := c.settle(); len(bad) > 0 {
		t.Fatalf("first converge: %s", strings.Join(bad, "; "))
	}
	return c
}

// write writes bottle b's spec as c.bottles says.
func (c *chaos) write(b string) { c.e.writeRaw(b, c.specYAML(b)) }

// specYAML is bottle b's spec file as c.bottles says. Docker guests name
// their image in Extra, so the harness's image line goes (a key given twice
// is refused).
func (c *chaos) specYAML(b string) string {
	s := c.bottles[b]
	y := s.yaml(c.e.name(b))
	if strings.Contains(s.Extra, "image:") {
		y = strings.Replace(y, "  image: "+testImage+"\n", "", 1)
	}
	return y
}

// canaries makes what nobody may touch: a container and a network with no
// bottle-reconcile labels, and a network of another instance.
func (c *chaos) canaries() {
	ctx, cancel := ctxT()
	defer cancel()
	name := "chaos-foreign-" + c.e.tag
	n, err := docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Internal: true})
	if err != nil {
		c.t.Fatal(err)
	}
	c.foreign["network/"+name] = n.ID
	ct, err := docker.ContainerCreate(ctx, &container.Config{Image: c.image, Labels: map[string]string{"chaos": c.e.tag}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := docker.ContainerStart(ctx, ct.ID, container.StartOptions{}); err != nil {
		c.t.Fatal(err)
	}
	c.foreign["container/"+name] = ct.ID
	other := "chaos-other-" + c.e.tag
	o, err := docker.NetworkCreate(ctx, other, network.CreateOptions{Driver: "bridge", Internal: true,
		Labels: map[string]string{labelInstance: "other-" + c.e.tag, "dev.bottle-reconcile.managed-by": "bottle-reconcile"}})
	if err != nil {
		c.t.Fatal(err)
	}
	c.foreign["network/"+other] = o.ID
	c.t.Cleanup(func() {
		ctx, cancel := ctxT()
		defer cancel()
		_ = docker.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true})
		_ = docker.NetworkRemove(ctx, n.ID)
		_ = docker.NetworkRemove(ctx, o.ID)
	})
}

// pick returns one of the bottles whose name starts with prefix ("" any),
// in a seeded order.
func (c *chaos) pick(prefix string) string {
	var names []string
	for b := range c.bottles {
		if strings.HasPrefix(b, prefix) {
			names = append(names, b)
		}
	}
	sort.Strings(names)
	return names[c.rng.IntN(len(names))]
}

func (c *chaos) sleepUpTo(d time.Duration) time.Duration {
	s := time.Duration(c.rng.Int64N(int64(d)))
	time.Sleep(s)
	return s
}

// killedOnce starts a --once and SIGKILLs it after up to d.
func (c *chaos) killedOnce(d time.Duration) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.e.command(ctx, "", "--once", c.e.specs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	s := c.sleepUpTo(d)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // smolvm children too, as a crash would
	_ = cmd.Wait()
	return s
}

func (c *chaos) rmContainer(name string) {
	ctx, cancel := ctxT()
	defer cancel()
	_ = docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
}

func (c *chaos) faults() []fault {
	fs := []fault{
		{"reconciler SIGKILL while replacing a guest", func(c *chaos) string {
			b := c.pick("")
			c.edit(b)
			return fmt.Sprintf("env of %s edited, --once killed after %s", b, c.killedOnce(3*time.Second))
		}},
		{"reconciler SIGKILL while tearing down", func(c *chaos) string {
			b := c.pick("")
			c.e.remove(b)
			s := c.killedOnce(3 * time.Second)
			c.write(b) // restored: the bottle is wanted again
			return fmt.Sprintf("spec of %s removed, --once killed after %s, spec restored", b, s)
		}},
		{"bundle removed by hand", func(c *chaos) string {
			b := c.pick("")
			c.rmContainer(bundleName(c.e.name(b)))
			return "docker rm -f the bundle of " + b
		}},
		{"guest removed by hand", func(c *chaos) string {
			b := c.pick("")
			if strings.HasPrefix(b, "d") {
				c.rmContainer(dockerGuestName(c.e.name(b)))
				return "docker rm -f the guest of " + b
			}
			if _, err := c.e.smolvm("machine", "delete", "-f", "--name", guestName(c.e.name(b))); err != nil {
				c.t.Errorf("delete machine: %v", err)
			}
			return "smolvm machine delete the guest of " + b
		}},
		{"network removed by hand", func(c *chaos) string {
			b := c.pick("")
			n := c.e.name(b)
			c.rmContainer(bundleName(n))
			if strings.HasPrefix(b, "d") {
				c.rmContainer(dockerGuestName(n))
			}
			ctx, cancel := ctxT()
			defer cancel()
			if err := docker.NetworkRemove(ctx, netName(n)); err != nil {
				c.t.Errorf("remove network: %v", err)
			}
			return "network of " + b + " removed (with what was on it)"
		}},
		{"VMM crashed", func(c *chaos) string {
			b := c.pick("s")
			if _, err := c.e.smolvm("__emu", "kill", guestName(c.e.name(b))); err != nil {
				c.t.Errorf("kill VMM: %v", err)
			}
			return "the VMM of " + b + " killed"
		}},
		{"spec made invalid", func(c *chaos) string {
			b := c.pick("")
			before := c.e.ids()
			c.e.writeRaw(b, "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata:\n  name: "+c.e.name(b)+"\nspec:\n  image: [not, an, image]\n")
			r := c.e.once()
			var bad []string
			if r.code != 1 {
				bad = append(bad, fmt.Sprintf("a pass over an invalid spec exited %d, want 1", r.code))
			}
			for k, id := range before {
				if strings.Contains(k, c.e.name(b)) && c.e.ids()[k] != id {
					bad = append(bad, "the invalid spec's "+k+" was changed")
				}
			}
			if len(bad) > 0 {
				c.t.Errorf("spec made invalid: %s", strings.Join(bad, "; "))
			}
			c.write(b)
			return "spec of " + b + " made invalid for a pass, then fixed"
		}},
		{"two reconcilers at once", func(c *chaos) string {
			b := c.pick("")
			c.edit(b)
			res := make(chan result, 2)
			for range 2 {
				go func() { res <- c.e.runNoFatal("", "--once", c.e.specs) }()
			}
			r1, r2 := <-res, <-res
			codes := []int{r1.code, r2.code}
			slices.Sort(codes)
			if !slices.Equal(codes, []int{0, 3}) && !slices.Equal(codes, []int{0, 0}) {
				c.t.Errorf("two reconcilers at once exited %v, want one 0 and one 3 (lock held), or both 0 one after the other\n%s\n%s", codes, r1, r2)
			}
			return fmt.Sprintf("env of %s edited, two --once at once exited %v", b, codes)
		}},
		{"smolvm create fails", func(c *chaos) string {
			return c.smolvmFault("SMOLVM_EMU_FAIL_NEXT=create@" + fmt.Sprint(c.gen+1))
		}},
		{"smolvm crashes between create and start", func(c *chaos) string {
			return c.smolvmFault("SMOLVM_EMU_CRASH_AFTER_CREATE=1")
		}},
	}
	fs = append(fs, c.stateFaults()...)
	fs = append(fs, c.smolvmHangFaults()...)
	if *chaosDockerd {
		fs = append(fs, fault{"dockerd SIGKILL mid-pass", func(c *chaos) string {
			b := c.pick("")
			c.edit(b)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := c.e.command(ctx, "", "--once", c.e.specs)
			if err := cmd.Start(); err != nil {
				c.t.Fatal(err)
			}
			s := c.sleepUpTo(1500 * time.Millisecond)
			if out, err := exec.Command("pkill", "-KILL", "-x", "dockerd").CombinedOutput(); err != nil {
				c.t.Errorf("kill dockerd: %v %s", err, out)
			}
			_ = cmd.Wait()
			if out, err := exec.Command("../scripts/docker-up").CombinedOutput(); err != nil {
				c.t.Fatalf("restart dockerd: %v\n%s", err, out)
			}
			return fmt.Sprintf("env of %s edited, dockerd killed %s into the pass and restarted", b, s)
		}})
	}
	return fs
}

// smolvmFault edits a smolvm bottle's env (so its machine is replaced) and
// runs one pass with the emulator's fault setting on, then turns it off.
func (c *chaos) smolvmFault(setting string) string {
	b := c.pick("s")
	c.edit(b)
	c.e.emuFaults([]string{setting})
	r := c.e.runNoFatal("", "--once", c.e.specs)
	c.e.emuFaults(nil)
	return fmt.Sprintf("env of %s edited, a pass with %s exited %d", b, setting, r.code)
}

// settle runs --once passes until one exits 0 with every invariant
// holding, at most healPasses of them, and returns how many it ran and,
// if it never got there, what was still wrong. A pass can exit 0 and the
// world still change after it: Docker finishes work a killed reconciler
// asked for (a removal) after the pass looked. Such a fault is settled by
// a later pass within the bound; the report counts how many needed one.
func (c *chaos) settle() (int, []string) {
	var bad []string
	for n := 1; n <= healPasses; n++ {
		r := c.e.runNoFatal("", "--once", c.e.specs)
		if strings.Contains(r.stderr, "panic:") {
			return n, []string{"a pass panicked:\n" + r.stderr}
		}
		if r.code != 0 {
			bad = []string{fmt.Sprintf("pass %d exited %d: %s", n, r.code, r)}
			continue
		}
		if bad = c.invariants(); len(bad) == 0 {
			return n, nil
		}
	}
	return healPasses + 1, append(bad, fmt.Sprintf("not settled after %d passes", healPasses))
}

// invariants checks the world against every rule the suite holds it to.
func (c *chaos) invariants() []string {
	var bad []string
	e := c.e
	nets, cs, ms := e.networks(), e.containers(), e.machines()
	want := map[string]bool{}
	for b := range c.bottles {
		n := e.name(b)
		want[n] = true
		if _, ok := nets[netName(n)]; !ok {
			bad = append(bad, b+": network missing")
		}
		if bc, ok := cs[bundleName(n)]; !ok || bc.State != "running" {
			bad = append(bad, b+": bundle not running")
		}
		if strings.HasPrefix(b, "d") {
			if g, ok := cs[dockerGuestName(n)]; !ok || g.State != "running" {
				bad = append(bad, b+": docker guest not running")
			} else if !c.hasRules(n) {
				bad = append(bad, b+": docker guest runs without its host firewall rules")
			}
		} else if m, ok := ms[guestName(n)]; !ok || m.State != "running" {
			bad = append(bad, b+": machine not running")
		}
	}
	// One of each role per bottle, and nothing without a spec.
	seen := map[string]int{}
	count := func(kind, bottle, role string) {
		if bottle == "" {
			return
		}
		seen[bottle+" "+role]++
		if !want[bottle] {
			bad = append(bad, fmt.Sprintf("%s of bottle %s exists without a spec", kind, bottle))
		}
	}
	for _, n := range nets {
		count("network", n.Labels[labelBottle], n.Labels[labelRole])
	}
	for _, ct := range cs {
		count("container", ct.Labels[labelBottle], ct.Labels[labelRole])
	}
	for _, m := range ms {
		count("machine", m.Labels[labelBottle], m.Labels[labelRole])
	}
	for k, n := range seen {
		if n > 1 {
			bad = append(bad, fmt.Sprintf("%d resources for %s", n, k))
		}
	}
	// Nothing foreign touched.
	ctx, cancel := ctxT()
	defer cancel()
	for k, id := range c.foreign {
		kind, name, _ := strings.Cut(k, "/")
		var err error
		var gotID string
		if kind == "container" {
			var ci container.InspectResponse
			ci, err = docker.ContainerInspect(ctx, name)
			gotID = ci.ID
			if err == nil && (ci.State == nil || !ci.State.Running) && !*chaosDockerd {
				bad = append(bad, "foreign container "+name+" was stopped")
			}
		} else {
			var ni network.Inspect
			ni, err = docker.NetworkInspect(ctx, name, network.InspectOptions{})
			gotID = ni.ID
		}
		if err != nil || gotID != id {
			bad = append(bad, fmt.Sprintf("foreign %s was touched (%v)", k, err))
		}
	}
	// No process left behind by the passes.
	out, _ := exec.Command("pgrep", "-f", reconBin+" ").Output()
	for _, pid := range strings.Fields(string(out)) {
		if pid != fmt.Sprint(c.watcher) {
			bad = append(bad, "a bottle-reconcile process left running: pid "+pid)
		}
	}
	return append(bad, c.smolvmLeftovers()...)
}

// dockerGuestName is a docker guest's container name (dockerguest.NameFor).
func dockerGuestName(bottle string) string { return "bottle-" + bottle + "-guest" }

// hasRules reports whether the host firewall holds rules for bottle n.
func (c *chaos) hasRules(n string) bool {
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	return err == nil && strings.Contains(string(out), "bottle-reconcile "+c.e.instance+" "+n+`"`)
}

func (c *chaos) writeReport(seed uint64, stats map[string]*faultStats) {
	total, broken := 0, 0
	for name, st := range stats {
		total += st.Runs
		broken += len(st.Violations)
		c.t.Logf("chaos: %-44s ran %3d, settled in 1/2/3 passes %d/%d/%d, violations %d",
			name, st.Runs, st.Passes[1], st.Passes[2], st.Passes[3], len(st.Violations))
	}
	c.t.Logf("chaos: seed %d: %d faults, %d with violations", seed, total, broken)
	if *chaosReport == "" {
		return
	}
	b, err := json.MarshalIndent(map[string]any{"seed": seed, "faults": total, "violations": broken, "byFault": stats, "dockerd": *chaosDockerd}, "", "  ")
	if err == nil {
		err = os.WriteFile(*chaosReport, append(b, '\n'), 0o644)
	}
	if err != nil {
		c.t.Errorf("write report: %v", err)
	}
}
