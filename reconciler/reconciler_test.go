package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/go-logr/logr/testr"
)

type rig struct {
	dir, state   string
	net, bun, vm *fakeDriver
	r            *Reconciler
	t            *testing.T
}

func newRig(t *testing.T, instance string) *rig {
	t.Helper()
	g := &rig{t: t, dir: t.TempDir(), state: t.TempDir(), net: newFake("net", bottle.RoleNetwork), bun: newFake("bundle", bottle.RoleBundle), vm: newFake("smolvm", bottle.RoleGuest)}
	g.r = g.reconciler(instance)
	return g
}

func (g *rig) reconciler(instance string) *Reconciler {
	return New(Config{Dir: g.dir, Instance: instance, StateDir: g.state, MaxDeletes: 5, Concurrency: 4},
		g.net, g.bun, map[string]Driver{"smolvm": g.vm}, testr.New(g.t))
}

func (g *rig) write(name, body string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.dir, name), []byte(body), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

func specFor(name string, extra ...string) string {
	s := "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata: {name: " + name + "}\nspec:\n  image: agent:1\n"
	for _, e := range extra {
		s += "  " + e + "\n"
	}
	return s
}

func (g *rig) pass() *Pass {
	g.t.Helper()
	p, err := g.r.Reconcile(context.Background())
	if err != nil {
		g.t.Fatalf("pass: %v", err)
	}
	return p
}

// writes returns every driver's write calls since the last call, in
// network, bundle, guest order.
func (g *rig) writes() []string {
	var out []string
	for _, f := range []*fakeDriver{g.net, g.bun, g.vm} {
		out = append(out, f.writes()...)
	}
	return out
}

func TestPassConvergesThenIsQuiet(t *testing.T) {
	g := newRig(t, "i1")
	for _, n := range []string{"a", "b", "c"} {
		g.write(n+".yaml", specFor(n))
	}
	p := g.pass()
	if !p.Converged() {
		t.Fatalf("not converged: %v", p.Failures())
	}
	if got := len(g.writes()); got != 9 {
		t.Fatalf("%d write calls, want 9", got)
	}
	p = g.pass()
	if !p.Plan.Empty() || len(g.writes()) != 0 || !p.Converged() {
		t.Fatalf("second pass is not a no-op:\n%s", p.Plan)
	}
	sts, _ := g.r.Status().All()
	if len(sts) != 3 || sts[0].State != StatusReady || len(sts[0].Resources) != 3 {
		t.Fatalf("statuses = %+v", sts)
	}
}

func TestPassEnvChangeRecreatesOnlyGuest(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	g.pass()
	g.writes()
	g.write("a.yaml", specFor("a", "env: {MODE: fast}"))
	g.pass()
	if got := strings.Join(g.writes(), ","); got != "delete bottle-a,create bottle-a" {
		t.Fatalf("writes = %s", got)
	}
}

func TestPassRemovedFileTearsDownInReverse(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	g.pass()
	g.writes()
	os.Remove(filepath.Join(g.dir, "a.yaml"))
	g.pass()
	var order []string
	for _, f := range []*fakeDriver{g.vm, g.bun, g.net} {
		order = append(order, f.writes()...)
	}
	if got := strings.Join(order, ","); got != "delete bottle-a,delete bottle-a-bundle,delete bottle-a" {
		t.Fatalf("writes = %s", got)
	}
	if sts, _ := g.r.Status().All(); len(sts) != 1 || sts[0].Bottle != "b" {
		t.Fatalf("status of a torn-down bottle not forgotten: %+v", sts)
	}
}

func TestPassInvalidEditKeepsBottle(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.pass()
	g.writes()
	g.write("a.yaml", specFor("a", "allowCIDRs: [127.0.0.1]"))
	p := g.pass()
	if len(g.writes()) != 0 || p.Converged() {
		t.Fatalf("invalid edit: converged=%v plan:\n%s", p.Converged(), p.Plan)
	}
	if f := strings.Join(p.Failures(), "\n"); !strings.Contains(f, "a.yaml:6:16: spec.allowCIDRs[0]") {
		t.Fatalf("failures do not locate the problem:\n%s", f)
	}
	sts, _ := g.r.Status().All()
	if sts[0].State != StatusInvalid {
		t.Fatalf("status = %+v", sts[0])
	}
	// A broken file whose name cannot be read blocks all pruning.
	g.write("a.yaml", "{{{")
	p = g.pass()
	if len(g.writes()) != 0 || !strings.Contains(p.Plan.String(), "blocked") {
		t.Fatalf("unreadable file destroyed something:\n%s", p.Plan)
	}
}

func TestPassMissingDirDestroysNothing(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.pass()
	g.writes()
	os.RemoveAll(g.dir)
	if _, err := g.r.Reconcile(context.Background()); err == nil {
		t.Fatal("a missing spec directory must be an error")
	}
	if w := g.writes(); len(w) != 0 {
		t.Fatalf("writes = %v", w)
	}
}

func TestPassObserveErrorDestroysNothing(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.pass()
	os.Remove(filepath.Join(g.dir, "a.yaml"))
	g.writes()
	g.vm.failOn["observe"] = errors.New("daemon down")
	if _, err := g.r.Reconcile(context.Background()); err == nil || !strings.Contains(err.Error(), "daemon down") {
		t.Fatalf("err = %v", err)
	}
	if w := g.writes(); len(w) != 0 {
		t.Fatalf("writes = %v", w)
	}
}

func TestPassFailingBottleIsIsolatedAndRetried(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	g.bun.failOn["create bottle-a-bundle"] = errors.New("boom")
	p := g.pass()
	if p.Converged() || !strings.Contains(strings.Join(p.Failures(), "\n"), "bottle a: create bundle bottle-a-bundle (bundle missing): boom") {
		t.Fatalf("failures = %v", p.Failures())
	}
	if _, ok := g.vm.items["bottle-b"]; !ok {
		t.Fatal("bottle b did not converge because a failed")
	}
	if _, ok := g.vm.items["bottle-a"]; ok {
		t.Fatal("a guest was created without its bundle")
	}
	sts, _ := g.r.Status().All()
	if sts[0].State != StatusFailed || sts[0].Failures != 1 || !strings.Contains(sts[0].LastError, "boom") {
		t.Fatalf("status = %+v", sts[0])
	}
	delete(g.bun.failOn, "create bottle-a-bundle")
	if p := g.pass(); !p.Converged() {
		t.Fatalf("not healed: %v", p.Failures())
	}
	// A failed delete is retried on the next pass, not forgotten.
	os.Remove(filepath.Join(g.dir, "b.yaml"))
	g.net.failOn["delete bottle-b"] = errors.New("in use")
	g.pass()
	if _, ok := g.net.items["bottle-b"]; !ok {
		t.Fatal("delete should have failed")
	}
	delete(g.net.failOn, "delete bottle-b")
	g.pass()
	if _, ok := g.net.items["bottle-b"]; ok {
		t.Fatal("failed delete was not retried")
	}
}

func TestInstancesLeaveEachOtherAlone(t *testing.T) {
	g := newRig(t, "one")
	g.write("a.yaml", specFor("a"))
	g.pass()
	other := New(Config{Dir: t.TempDir(), Instance: "two", StateDir: t.TempDir(), MaxDeletes: 5},
		g.net, g.bun, map[string]Driver{"smolvm": g.vm}, testr.New(t))
	g.writes()
	p, err := other.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if w := g.writes(); len(w) != 0 || !p.Plan.Empty() {
		t.Fatalf("instance two touched instance one: %v\n%s", w, p.Plan)
	}
}

// sequenced makes the rig's drivers log their writes to one sequence.
func (g *rig) sequenced() *sequence {
	s := &sequence{}
	g.net.seq, g.bun.seq, g.vm.seq = s, s, s
	return s
}

// TestBundleReplacedGuestOrder checks the replacement of a bundle: the
// guest is frozen, the old bundle goes (freeing its pinned address) before
// the new one is created, and the guest starts again last. A bundle that
// serves the guest is replaced only once the guest is frozen; one that
// serves nothing already (dead, gone) has the freeze run beside its removal
// and the new one's creation, so the heal is not held up by it.
func TestBundleReplacedGuestOrder(t *testing.T) {
	const (
		stop   = "smolvm: stop bottle-a"
		del    = "bundle: delete bottle-a-bundle"
		create = "bundle: create bottle-a-bundle"
		start  = "smolvm: start bottle-a"
	)
	for _, tt := range []struct {
		name   string
		drift  func(g *rig)
		writes []string    // in any order that keeps before
		before [][2]string // pairs that must run in this order
		// marks counts the plan's "[at once with the stop above]" notes,
		// the only kind of "[at once with ...]" it may have.
		marks int
	}{
		{
			// The freeze runs beside the dead bundle's removal and the new
			// one's creation; the thaw waits for all three.
			name: "bundle exited",
			drift: func(g *rig) {
				g.bun.mutate("bottle-a-bundle", func(r *bottle.Resource) { r.State, r.Detail = bottle.StateStopped, "exited (137)" })
			},
			writes: []string{stop, del, create, start},
			before: [][2]string{{del, create}, {create, start}, {stop, start}},
			marks:  2,
		},
		{
			name:   "bundle gone",
			drift:  func(g *rig) { g.bun.mu.Lock(); delete(g.bun.items, "bottle-a-bundle"); g.bun.mu.Unlock() },
			writes: []string{stop, create, start},
			before: [][2]string{{create, start}, {stop, start}},
			marks:  1,
		},
		{
			// A bundle still serving keeps serving until its guest is frozen.
			name:   "running bundle with other settings",
			drift:  func(g *rig) { g.bun.mutate("bottle-a-bundle", func(r *bottle.Resource) { r.Hash = "other" }) },
			writes: []string{stop, del, create, start},
			before: [][2]string{{stop, del}, {del, create}, {create, start}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, "i1")
			g.write("a.yaml", specFor("a"))
			g.pass()
			seq := g.sequenced()
			tt.drift(g)
			p := g.pass()
			got := seq.take()
			if !sameSet(got, tt.writes) {
				t.Fatalf("writes = %q, want %q", got, tt.writes)
			}
			for _, b := range tt.before {
				if slices.Index(got, b[0]) > slices.Index(got, b[1]) {
					t.Errorf("writes = %q: %q ran after %q", got, b[0], b[1])
				}
			}
			text := p.Plan.String()
			if n := strings.Count(text, "[at once with"); n != tt.marks || strings.Count(text, "[at once with the stop above]") != tt.marks {
				t.Errorf("the plan has %d \"[at once with ...]\" marks, want %d, each \"the stop above\":\n%s", n, tt.marks, text)
			}
			if b := g.bun.items["bottle-a-bundle"]; b.Addr != bottle.BundleAddr(g.net.items["bottle-a"].Subnet) {
				t.Fatalf("new bundle at %s, want the pinned address", b.Addr)
			}
		})
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestTwoFilesClaimingOneName checks that when a second file claims a
// running bottle's name neither file wins and nothing is destroyed.
func TestTwoFilesClaimingOneName(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	g.pass()
	g.writes()
	g.write("copy-of-a.yaml", specFor("a", "env: {MODE: fast}"))
	p := g.pass()
	if w := g.writes(); len(w) != 0 {
		t.Fatalf("a name claimed twice changed things: %q", w)
	}
	if p.Converged() || !strings.Contains(strings.Join(p.Failures(), "\n"), "more than one file") {
		t.Fatalf("failures do not report the duplicate: %q", p.Failures())
	}
	sts, _ := g.r.Status().All()
	if sts[0].Bottle != "a" || sts[0].State != StatusInvalid || len(sts[0].Resources) != 3 || sts[1].State != StatusReady {
		t.Fatalf("statuses = %+v", sts)
	}
	// Removing the original leaves one claim, which then wins.
	os.Remove(filepath.Join(g.dir, "a.yaml"))
	g.pass()
	if got := strings.Join(g.writes(), ","); got != "delete bottle-a,create bottle-a" {
		t.Fatalf("after the duplicate is resolved: writes = %s", got)
	}
}

// TestDownOrderAndScope checks down NAME... and --all: guest, bundle,
// network, only the bottles asked for, protected ones only with force.
func TestDownOrderAndScope(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	g.write("p.yaml", specFor("p", "protect: true"))
	g.pass()
	seq := g.sequenced()

	p, err := g.r.Down(context.Background(), []string{"a", "nosuch"}, false, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"smolvm: delete bottle-a", "bundle: delete bottle-a-bundle", "net: delete bottle-a"}
	if got := seq.take(); !slices.Equal(got, want) {
		t.Fatalf("down a: writes = %q, want %q", got, want)
	}
	if f := strings.Join(p.DownFailures(), "\n"); !strings.Contains(f, "bottle nosuch: missing") {
		t.Fatalf("down of an unknown bottle is not reported: %q", f)
	}
	if sts, _ := g.r.Status().All(); len(sts) != 2 || sts[0].Bottle != "b" {
		t.Fatalf("status after down a: %+v", sts)
	}

	p, err = g.r.Down(context.Background(), nil, true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"smolvm: delete bottle-b", "bundle: delete bottle-b-bundle", "net: delete bottle-b"}
	if got := seq.take(); !slices.Equal(got, want) {
		t.Fatalf("down --all: writes = %q, want %q (p is protected)", got, want)
	}
	if f := strings.Join(p.DownFailures(), "\n"); !strings.Contains(f, "bottle p: protected") {
		t.Fatalf("down --all does not say p was kept: %q", f)
	}
	if _, err := g.r.Down(context.Background(), nil, true, true, false); err != nil {
		t.Fatal(err)
	}
	want = []string{"smolvm: delete bottle-p", "bundle: delete bottle-p-bundle", "net: delete bottle-p"}
	if got := seq.take(); !slices.Equal(got, want) {
		t.Fatalf("down --all --force: writes = %q, want %q", got, want)
	}
}

// TestLockWaits checks --lock-timeout: the lock is taken once its holder
// lets go within the wait, and a holder that does not is named.
func TestLockWaits(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLock(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = AcquireLock(context.Background(), dir, 300*time.Millisecond)
	var held *LockHeldError
	if !errors.As(err, &held) || held.Holder.PID != os.Getpid() || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("after %v: err = %v; want the holder named after the 300ms wait", time.Since(start), err)
	}
	time.AfterFunc(300*time.Millisecond, func() { l.Release() })
	start = time.Now()
	l2, err := AcquireLock(context.Background(), dir, 10*time.Second)
	if err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("waiting for a released lock: %v after %v", err, time.Since(start))
	}
	l2.Release()
}

func TestLockNamesHolder(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLock(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(context.Background(), dir, 0)
	var held *LockHeldError
	if !errors.As(err, &held) || held.Holder.PID != os.Getpid() || held.Holder.Command == "" {
		t.Fatalf("err = %v", err)
	}
	l.Release()
	l2, err := AcquireLock(context.Background(), dir, 0)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestPlanIsDry(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	p, err := g.r.Plan(context.Background())
	if err != nil || p.Plan.Empty() {
		t.Fatalf("plan: %v %v", err, p)
	}
	if w := g.writes(); len(w) != 0 {
		t.Fatalf("plan wrote: %v", w)
	}
	if sts, _ := g.r.Status().All(); len(sts) != 0 {
		t.Fatal("plan wrote status")
	}
}

func TestEmptyDirPrunesNothingUnlessAllowed(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.pass()
	g.writes()
	os.Remove(filepath.Join(g.dir, "a.yaml"))
	p := g.pass()
	if w := g.writes(); len(w) != 0 || !strings.Contains(p.Plan.String(), "holds no spec files") {
		t.Fatalf("an emptied directory pruned: %v\n%s", w, p.Plan)
	}
	g.r.cfg.AllowEmpty = true
	g.pass()
	if w := g.writes(); len(w) != 3 {
		t.Fatalf("with AllowEmpty: writes = %v", w)
	}
}

type versionedFake struct {
	*fakeDriver
	v string
}

func (v versionedFake) Version(context.Context) (string, error) { return v.v, nil }

func TestPassRecordsRuntimeVersions(t *testing.T) {
	g := newRig(t, "i1")
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5},
		g.net, g.bun, map[string]Driver{"smolvm": versionedFake{g.vm, "1.9.2"}}, testr.New(t))
	g.write("a.yaml", specFor("a"))
	g.pass()
	rts, err := g.r.Status().Runtimes()
	if err != nil || len(rts) != 1 || rts[0] != (Runtime{Kind: "smolvm", Version: "1.9.2"}) {
		t.Fatalf("runtimes = %+v, %v", rts, err)
	}
}

// TestFailuresStartOverWhenTheSpecChanges checks that the count of failed
// passes, which sets a watcher's backoff, is per spec: --once passes record
// the spec's fingerprint too, so an edit starts the count over.
func TestFailuresStartOverWhenTheSpecChanges(t *testing.T) {
	g := newRig(t, "i1")
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5},
		g.net, g.bun, map[string]Driver{"smolvm": badImage{fakeDriver: g.vm, bad: "broken:"}}, testr.New(t))
	failures := func() int {
		t.Helper()
		sts, err := g.r.Status().All()
		if err != nil || len(sts) != 1 || sts[0].State != StatusFailed {
			t.Fatalf("statuses = %+v, %v", sts, err)
		}
		return sts[0].Failures
	}
	g.write("a.yaml", strings.Replace(specFor("a"), "agent:1", "broken:1", 1))
	g.pass()
	g.pass()
	if n := failures(); n != 2 {
		t.Fatalf("failures = %d, want 2", n)
	}
	g.write("a.yaml", strings.Replace(specFor("a"), "agent:1", "broken:2", 1))
	g.pass()
	if n := failures(); n != 1 {
		t.Fatalf("failures after an edit = %d, want 1", n)
	}
}

type cleaningFake struct {
	*fakeDriver
	cleaned *[]string
}

func (c cleaningFake) Cleanup(_ context.Context, instance string) error {
	*c.cleaned = append(*c.cleaned, instance)
	return nil
}

func TestLastBottleGoneCleansUpInstance(t *testing.T) {
	g := newRig(t, "i1")
	var cleaned []string
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, AllowEmpty: true},
		g.net, cleaningFake{g.bun, &cleaned}, map[string]Driver{"smolvm": g.vm}, testr.New(t))
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	g.pass()
	os.Remove(filepath.Join(g.dir, "a.yaml"))
	g.pass()
	if len(cleaned) != 0 {
		t.Fatalf("cleaned up with bottle b still there: %v", cleaned)
	}
	os.Remove(filepath.Join(g.dir, "b.yaml"))
	g.pass()
	g.pass() // nothing left to do: no second cleanup
	if len(cleaned) != 1 || cleaned[0] != "i1" {
		t.Fatalf("cleanups = %v, want one for i1", cleaned)
	}
}

// A spec pinning a subnet outside the pool is invalid (held, nothing
// created) unless the reconciler is told to accept it.
func TestSubnetOutsidePoolNeedsTheOption(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a", "network: {subnet: 10.99.0.0/29}"))
	p := g.pass()
	if w := g.writes(); len(w) != 0 || len(p.Specs.Problems) != 1 || !strings.Contains(p.Specs.Problems[0].Message, "--allow-subnet-outside-pool") {
		t.Fatalf("writes %v, problems %v", w, p.Specs.Problems)
	}
	g.r.cfg.AllowSubnetOutsidePool = true
	if p = g.pass(); !p.Converged() || len(g.writes()) != 3 {
		t.Fatalf("with AllowSubnetOutsidePool: converged %v, failures %v", p.Converged(), p.Failures())
	}
}
