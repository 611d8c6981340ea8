package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/internal/watchlog"
)

// Case 1 and 2: three bottles converge from an empty host in one pass, and
// a second pass changes nothing.
func TestConvergeThenNoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bs := []string{e.name("a"), e.name("b"), e.name("c")}
	for _, b := range []string{"a", "b", "c"} {
		e.write(b, bottleSpec{})
	}
	r := e.mustOnce()
	if !strings.Contains(r.stdout, "3 bottle(s): 9 created, 0 deleted") {
		t.Errorf("first pass summary:\n%s", r)
	}
	e.assertCounts(3)
	for _, b := range bs {
		e.assertBottle(b)
	}
	if _, ok := e.networks()[egressName(e.instance)]; !ok {
		t.Errorf("egress network %s missing", egressName(e.instance))
	}
	// One create per machine, each locked to its own bundle (assertBottle
	// checked the argv of the last one).
	for _, b := range bs {
		var n int
		for _, c := range e.calls() {
			if c.op() == "create" && c.target() == guestName(b) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d creates of machine %s, want 1", n, guestName(b))
		}
	}

	before, nCalls := e.ids(), len(e.calls())
	r = e.mustOnce()
	if !strings.Contains(r.stdout, "3 bottle(s): 0 created, 0 deleted, 0 started, 0 stopped, 0 repaired") {
		t.Errorf("second pass summary:\n%s", r)
	}
	if got := ops(t, r.stderr, ""); len(got) > 0 {
		t.Errorf("second pass ran operations: %v", got)
	}
	e.assertUnchanged(before, nCalls)
	e.assertCounts(3)
}

// Case 3: an env change recreates only that guest.
func TestEnvChangeRecreatesOnlyThatGuest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.name("a"), e.name("b")
	e.write("a", bottleSpec{Env: map[string]string{"MODE": "one"}})
	e.write("b", bottleSpec{Env: map[string]string{"MODE": "one"}})
	e.mustOnce()
	before, nCalls := e.ids(), len(e.calls())

	e.write("a", bottleSpec{Env: map[string]string{"MODE": "two"}})
	r := e.mustOnce()
	if got, want := opStrings(ops(t, r.stderr, a)), []string{"delete guest", "create guest"}; !slices.Equal(got, want) {
		t.Errorf("operations on %s: %v, want %v\n%s", a, got, want, r)
	}
	if got := ops(t, r.stderr, b); len(got) > 0 {
		t.Errorf("operations on the untouched bottle %s: %v", b, got)
	}
	var creates, deletes int
	for _, c := range mutations(e.calls()[nCalls:]) {
		if c.target() != guestName(a) {
			t.Errorf("smolvm call on another machine: %q", c.Args)
		}
		switch c.op() {
		case "create":
			creates++
		case "delete", "rm":
			deletes++
		}
	}
	if creates != 1 || deletes != 1 {
		t.Errorf("machine %s: %d creates and %d deletes, want 1 and 1", guestName(a), creates, deletes)
	}
	if after := e.ids(); !maps.Equal(before, after) {
		t.Errorf("bundles or networks changed:\nbefore %v\nafter  %v", before, after)
	}
	e.assertBottle(a)
	e.assertBottle(b)
	e.assertCounts(2)
}

// Case 4: a subnet change recreates the chain: guest, bundle, network
// deleted, then network, bundle, guest created, in that order.
func TestSubnetChangeRecreatesChainInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.name("a"), e.name("b")
	first, second := e.poolNet+".64/29", e.poolNet+".72/29"
	e.write("a", bottleSpec{Subnet: first})
	e.write("b", bottleSpec{})
	e.mustOnce()
	if got := e.subnetOf(a); got != first {
		t.Fatalf("pinned subnet: network has %s, want %s", got, first)
	}
	e.assertBottle(a)
	before := e.ids()
	nCalls := len(e.calls())

	e.write("a", bottleSpec{Subnet: second})
	r := e.mustOnce()
	want := []string{"delete guest", "delete bundle", "delete network", "create network", "create bundle", "create guest"}
	if got := opStrings(ops(t, r.stderr, a)); !slices.Equal(got, want) {
		t.Errorf("operations on %s:\n got %v\nwant %v\n%s", a, got, want, r)
	}
	if got := ops(t, r.stderr, b); len(got) > 0 {
		t.Errorf("operations on the untouched bottle %s: %v", b, got)
	}
	if got := e.subnetOf(a); got != second {
		t.Errorf("network has %s, want %s", got, second)
	}
	if ip := e.bundleIP(a); ip != bundleAddr(second) {
		t.Errorf("bundle at %s, want %s", ip, bundleAddr(second))
	}
	e.assertBottle(a) // the new machine's argv allows the new bundle address
	after := e.ids()
	for _, k := range []string{"network/" + netName(a), "container/" + bundleName(a)} {
		if before[k] == after[k] {
			t.Errorf("%s kept its ID %s across a subnet change", k, before[k])
		}
	}
	for _, k := range []string{"network/" + netName(b), "container/" + bundleName(b), "network/" + egressName(e.instance)} {
		if before[k] != after[k] {
			t.Errorf("%s changed: %s → %s", k, before[k], after[k])
		}
	}
	for _, c := range mutations(e.calls()[nCalls:]) {
		if c.target() != guestName(a) {
			t.Errorf("smolvm call on another machine: %q", c.Args)
		}
	}
	e.assertCounts(2)
}

// Case 5: a removed file tears down only that bottle, guest first.
func TestRemovedFileTearsDownOnlyThatBottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.name("a"), e.name("b")
	e.write("a", bottleSpec{})
	e.write("b", bottleSpec{})
	e.mustOnce()
	before, nCalls := e.ids(), len(e.calls())

	e.remove("a")
	r := e.mustOnce()
	if got, want := opStrings(ops(t, r.stderr, a)), []string{"delete guest", "delete bundle", "delete network"}; !slices.Equal(got, want) {
		t.Errorf("operations on %s: %v, want %v\n%s", a, got, want, r)
	}
	if got := ops(t, r.stderr, b); len(got) > 0 {
		t.Errorf("operations on the untouched bottle %s: %v", b, got)
	}
	e.assertGone(a)
	e.assertBottle(b)
	e.assertCounts(1)
	after := e.ids()
	for _, k := range []string{"network/" + netName(b), "container/" + bundleName(b), "network/" + egressName(e.instance)} {
		if before[k] != after[k] {
			t.Errorf("%s changed: %q → %q", k, before[k], after[k])
		}
	}
	for _, c := range mutations(e.calls()[nCalls:]) {
		if c.target() != guestName(a) {
			t.Errorf("smolvm call on another machine: %q", c.Args)
		}
	}
	if _, err := os.Stat(filepath.Join(e.state, "status", a+".json")); !os.IsNotExist(err) {
		t.Errorf("status of the removed bottle is still recorded (stat: %v)", err)
	}
}

// Case 6: an invalid edit leaves its bottle running, exits 1 and names
// file:line; an unreadable file blocks every teardown.
func TestInvalidEditLeavesBottleRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.name("a"), e.name("b")
	e.write("a", bottleSpec{})
	e.write("b", bottleSpec{})
	e.mustOnce()
	before, nCalls := e.ids(), len(e.calls())

	// Line 7 is the first line under spec: after the image.
	e.write("a", bottleSpec{Extra: "  allowCIDRs: [127.0.0.0/8]\n"})
	r := e.once()
	if r.code != 1 {
		t.Errorf("invalid edit: want exit 1\n%s", r)
	}
	if want := e.file("a") + ":7:"; !strings.Contains(r.stdout+r.stderr, want) {
		t.Errorf("output does not name %s\n%s", want, r)
	}
	e.assertUnchanged(before, nCalls)
	e.assertBottle(a)
	e.assertBottle(b)
	sts := e.status()
	if sts[a].State != "Invalid" || sts[b].State != "Ready" {
		t.Errorf("status: %s is %q (want Invalid), %s is %q (want Ready)", a, sts[a].State, b, sts[b].State)
	}

	// A file whose bottle name cannot be read might be any bottle: with it
	// present, removing b's file tears nothing down.
	e.writeRaw("a", "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata: [\n")
	e.remove("b")
	r = e.once()
	if r.code != 1 {
		t.Errorf("unreadable file: want exit 1\n%s", r)
	}
	if !strings.Contains(r.stdout+r.stderr, e.file("a")+":") {
		t.Errorf("output does not name %s\n%s", e.file("a"), r)
	}
	e.assertUnchanged(before, nCalls)
	e.assertCounts(2)
}

// Case 7: a deleted spec directory destroys nothing.
func TestDeletedSpecDirDestroysNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("a", bottleSpec{})
	e.mustOnce()
	before, nCalls := e.ids(), len(e.calls())

	if err := os.RemoveAll(e.specs); err != nil {
		t.Fatal(err)
	}
	r := e.once()
	if r.code != 1 {
		t.Errorf("missing spec directory: want exit 1\n%s", r)
	}
	if !strings.Contains(r.stderr, e.specs) {
		t.Errorf("stderr does not name the directory %s\n%s", e.specs, r)
	}
	if p := e.run("plan", "--detailed-exitcode", e.specs); p.code != 1 {
		t.Errorf("plan on a missing directory: want exit 1\n%s", p)
	}
	e.assertUnchanged(before, nCalls)
	e.assertBottle(e.name("a"))
}

// Case 8: a bundle removed behind the reconciler's back heals on the next
// pass, at the same address, without recreating the guest.
func TestRemovedBundleHeals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.name("a"), e.name("b")
	e.write("a", bottleSpec{})
	e.write("b", bottleSpec{})
	e.mustOnce()
	ip := e.bundleIP(a)
	before, nCalls := e.ids(), len(e.calls())

	if out, err := exec.Command("docker", "rm", "-f", bundleName(a)).CombinedOutput(); err != nil {
		t.Fatalf("docker rm -f: %v\n%s", err, out)
	}
	r := e.mustOnce()
	after := e.ids()
	k := "container/" + bundleName(a)
	if after[k] == "" || after[k] == before[k] {
		t.Errorf("bundle %s: ID %q before, %q after; want a new one", bundleName(a), before[k], after[k])
	}
	if got := e.bundleIP(a); got != ip {
		t.Errorf("healed bundle at %s, want %s", got, ip)
	}
	e.assertBottle(a)
	e.assertBottle(b)
	for _, c := range mutations(e.calls()[nCalls:]) {
		if c.target() != guestName(a) {
			t.Errorf("smolvm call on another machine: %q", c.Args)
		}
		if c.op() == "create" || c.op() == "delete" {
			t.Errorf("guest recreated for a bundle at the same address: %q", c.Args)
		}
	}
	if got := ops(t, r.stderr, b); len(got) > 0 {
		t.Errorf("operations on the untouched bottle %s: %v", b, got)
	}
	for _, k := range []string{"network/" + netName(a), "network/" + netName(b), "container/" + bundleName(b)} {
		if before[k] != after[k] {
			t.Errorf("%s changed: %q → %q", k, before[k], after[k])
		}
	}

	// A guest whose VMM died is started again, not recreated.
	if _, err := e.smolvm("__emu", "kill", guestName(b)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the killed machine to show stopped", func() bool {
		return e.machines()[guestName(b)].State == "stopped"
	})
	before, nCalls = e.ids(), len(e.calls())
	e.mustOnce()
	var got []string
	for _, c := range mutations(e.calls()[nCalls:]) {
		got = append(got, c.op()+" "+c.target())
	}
	if want := []string{"start " + guestName(b)}; !slices.Equal(got, want) {
		t.Errorf("calls after the guest died: %v, want %v", got, want)
	}
	if after := e.ids(); !maps.Equal(before, after) {
		t.Errorf("Docker objects changed when only a guest died")
	}
	e.assertBottle(b)
}

// background is a reconciler run in the background.
type background struct {
	cmd      *exec.Cmd
	out, err watchlog.Buffer // read while the process writes them
	done     chan struct{}
}

func (e *env) start(extra []string, sub string, args ...string) *background {
	e.t.Helper()
	bg := &background{done: make(chan struct{})}
	var argv []string
	if sub != "" {
		argv = append(argv, sub)
	}
	argv = append(append(argv, e.commonFlags()...), args...)
	bg.cmd = exec.Command(reconBin, argv...)
	bg.cmd.Env = append(e.environ(), e.emuFaults(extra)...)
	bg.cmd.Dir = e.root
	bg.cmd.Stdout, bg.cmd.Stderr = &bg.out, &bg.err
	if err := bg.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = bg.cmd.Wait(); close(bg.done) }()
	e.t.Cleanup(func() { e.emuFaults(nil) })
	e.t.Cleanup(func() {
		_ = bg.cmd.Process.Kill()
		<-bg.done
	})
	return bg
}

func (bg *background) exited(d time.Duration) bool {
	select {
	case <-bg.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Case 9: a reconciler killed mid-pass leaves nothing the next pass does not
// adopt or clean up.
func TestKilledMidPassRecovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	names := []string{"a", "b", "c", "d", "e"}
	for _, b := range names {
		e.write(b, bottleSpec{})
	}
	bg := e.start(nil, "", "--once", e.specs)
	// Killed while a bundle is up but maybe not yet ready: the next pass finds
	// it starting, and half the chain of the others built.
	waitFor(t, time.Minute, "the first bundle container to run", func() bool {
		for _, c := range e.containers() {
			if c.State == "running" {
				return true
			}
		}
		return false
	})
	if err := bg.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !bg.exited(10 * time.Second) {
		t.Fatal("the killed reconciler did not exit")
	}
	t.Logf("killed with %d bundle(s), %d network(s), %d machine(s)", len(e.containers()), len(e.networks()), len(e.machines()))

	e.mustOnce()
	e.assertCounts(len(names))
	for _, b := range names {
		e.assertBottle(e.name(b))
	}
	// A create that the kill cut short is finished or redone, never doubled.
	for _, b := range names {
		n := 0
		for _, c := range e.calls() {
			if c.op() == "create" && c.target() == guestName(e.name(b)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("machine %s created %d times, want once", guestName(e.name(b)), n)
		}
	}
	if r2 := e.mustOnce(); len(ops(t, r2.stderr, "")) > 0 {
		t.Errorf("the pass after recovery still had work:\n%s", r2)
	}
}

// Case 9, second half: a smolvm create that crashed after storing its record
// is adopted and started by the next pass, not created twice.
func TestCrashedCreateIsAdopted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.name("a")
	e.write("a", bottleSpec{})
	r := e.runEnv([]string{"SMOLVM_EMU_CRASH_AFTER_CREATE=1"}, "", "--once", e.specs)
	if r.code != 1 {
		t.Errorf("pass with a crashing create: want exit 1\n%s", r)
	}
	m, ok := e.machines()[guestName(a)]
	if !ok {
		t.Fatalf("the crashed create left no machine record; the fault did not fire\n%s", r)
	}
	if m.State != "created" {
		t.Errorf("machine after crashed create is %s, want created", m.State)
	}
	nCalls := len(e.calls())

	e.mustOnce()
	var got []string
	for _, c := range mutations(e.calls()[nCalls:]) {
		got = append(got, c.op()+" "+c.target())
	}
	if want := []string{"start " + guestName(a)}; !slices.Equal(got, want) {
		t.Errorf("calls after the crash: %v, want %v", got, want)
	}
	e.assertBottle(a)
	e.assertCounts(1)

	// A reconciler killed while smolvm starts a machine it just created:
	// the next pass starts the machine, and creates nothing twice.
	b := e.name("b")
	e.write("b", bottleSpec{})
	bg := e.start([]string{"SMOLVM_EMU_HANG=start"}, "", "--once", e.specs)
	var hung *call
	waitFor(t, time.Minute, "the hanging machine start", func() bool {
		for _, c := range e.calls() {
			if c.op() == "start" && c.target() == guestName(b) {
				hung = &c
				return true
			}
		}
		return false
	})
	// The hung call sleeps until killed, in its own process group.
	t.Cleanup(func() { _ = syscall.Kill(-hung.PID, syscall.SIGKILL) })
	_ = bg.cmd.Process.Signal(syscall.SIGKILL)
	if !bg.exited(10 * time.Second) {
		t.Fatal("the killed reconciler did not exit")
	}
	_ = syscall.Kill(-hung.PID, syscall.SIGKILL)
	nCalls = len(e.calls())
	e.mustOnce()
	got = nil
	for _, c := range mutations(e.calls()[nCalls:]) {
		got = append(got, c.op()+" "+c.target())
	}
	if want := []string{"start " + guestName(b)}; !slices.Equal(got, want) {
		t.Errorf("calls after the kill: %v, want %v", got, want)
	}
	e.assertBottle(a)
	e.assertBottle(b)
	e.assertCounts(2)
}

// Case 10: two instances leave each other alone, sharing a pool and a
// smolvm data directory.
func TestTwoInstancesLeaveEachOtherAlone(t *testing.T) {
	t.Parallel()
	x := newEnv(t)
	y := x.twin()
	x1, x2, y1 := x.name("one"), x.name("two"), y.name("one")
	x.write("one", bottleSpec{})
	x.write("two", bottleSpec{})
	y.write("one", bottleSpec{})
	y.write("two", bottleSpec{})
	// Both allocate from the same pool at the same time.
	done := make(chan result)
	go func() { done <- y.runNoFatal("", "--once", y.specs) }()
	x.mustOnce()
	if r := <-done; r.code != 0 {
		t.Fatalf("concurrent pass of %s: want exit 0\n%s", y.instance, r)
	}
	y.remove("two")
	y.mustOnce()
	y.assertGone(y.name("two"))
	for _, b := range []string{x1, x2} {
		x.assertBottle(b)
	}
	y.assertBottle(y1)
	if sx, sy := x.subnetOf(x1), y.subnetOf(y1); sx == sy {
		t.Errorf("two instances share subnet %s", sx)
	}
	yBefore, nCalls := y.ids(), len(x.calls())

	x.remove("one")
	r := x.mustOnce()
	x.assertGone(x1)
	x.assertBottle(x2)
	y.assertBottle(y1)
	if after := y.ids(); !maps.Equal(yBefore, after) {
		t.Errorf("the other instance's Docker objects changed:\nbefore %v\nafter  %v", yBefore, after)
	}
	for _, c := range mutations(x.calls()[nCalls:]) {
		if c.target() != guestName(x1) {
			t.Errorf("smolvm call on a machine not removed: %q", c.Args)
		}
	}
	for _, o := range ops(t, r.stderr, "") {
		if o.Bottle != x1 {
			t.Errorf("operation on %s by instance %s: %v", o.Bottle, x.instance, o)
		}
	}

	// The other instance sees nothing to do.
	r = y.mustOnce()
	if got := ops(t, r.stderr, ""); len(got) > 0 {
		t.Errorf("instance %s acted after the other's removal: %v", y.instance, got)
	}

	// A bottle name the other instance owns is a conflict, not a takeover.
	xBefore := x.ids()
	nCalls = len(x.calls())
	y.writeRaw("clash", bottleSpec{}.yaml(x2))
	r = y.once()
	if r.code != 1 || !strings.Contains(r.stderr, "conflict") {
		t.Errorf("a name owned by another instance: want exit 1 and a conflict\n%s", r)
	}
	if after := x.ids(); !maps.Equal(xBefore, after) {
		t.Errorf("the owner's Docker objects changed:\nbefore %v\nafter  %v", xBefore, after)
	}
	if m := mutations(x.calls()[nCalls:]); len(m) > 0 {
		t.Errorf("smolvm called to change machines: %v", m)
	}
	x.assertBottle(x2)
	y.remove("clash")
}

// Case 11: a second pass while the first holds the lock exits 3 and names
// the holder.
func TestLockHeldExits3(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("a", bottleSpec{})
	// The holder hangs in its first smolvm call, inside the lock.
	bg := e.start([]string{"SMOLVM_EMU_HANG=ls"}, "", "--once", e.specs)
	lockFile := filepath.Join(e.state, "lock")
	waitFor(t, 30*time.Second, "the lock holder to record itself", func() bool {
		b, _ := os.ReadFile(lockFile)
		return bytes.Contains(b, []byte(fmt.Sprintf(`"pid":%d`, bg.cmd.Process.Pid)))
	})
	waitFor(t, 30*time.Second, "the holder's hanging smolvm call", func() bool {
		for _, c := range e.calls() {
			if c.op() == "ls" {
				return true
			}
		}
		return false
	})

	holder := fmt.Sprintf("pid %d", bg.cmd.Process.Pid)
	for _, extra := range [][]string{nil, {"--lock-timeout", "600ms"}} {
		start := time.Now()
		r := e.once(extra...)
		if r.code != 3 {
			t.Errorf("second pass %v: want exit 3\n%s", extra, r)
		}
		if !strings.Contains(r.stderr, holder) || !strings.Contains(r.stderr, e.instance) {
			t.Errorf("second pass %v does not name the holder (%s) and instance\n%s", extra, holder, r)
		}
		if extra != nil && time.Since(start) < 600*time.Millisecond {
			t.Errorf("--lock-timeout 600ms gave up after %s", time.Since(start))
		}
	}
	if r := e.run("down", "--all", "--dir", e.specs); r.code != 3 {
		t.Errorf("down while the lock is held: want exit 3\n%s", r)
	}

	// SIGTERM ends the holder, hung call and all, and frees the lock.
	if err := bg.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !bg.exited(15 * time.Second) {
		t.Fatalf("the holder did not exit within 15 s of SIGTERM\n%s", bg.err.String())
	}
	if len(e.containers()) > 0 {
		t.Errorf("the interrupted pass created containers")
	}
	e.mustOnce()
	e.assertBottle(e.name("a"))
}

// planJSON is the output of plan -o json.
type planJSON struct {
	Instance string `json:"instance"`
	Changes  bool   `json:"changes"`
	Ops      []struct {
		Bottle string `json:"bottle"`
		Step   int    `json:"step"`
		Action string `json:"action"`
		Role   string `json:"role"`
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"ops"`
	Notes    []json.RawMessage `json:"notes"`
	Problems []json.RawMessage `json:"problems"`
}

func (e *env) planJSON() planJSON {
	e.t.Helper()
	r := e.run("plan", "-o", "json", e.specs)
	if r.code != 0 {
		e.t.Fatalf("plan -o json: want exit 0\n%s", r)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		e.t.Fatalf("plan -o json does not parse: %v\n%s", err, r)
	}
	return p
}

// Case 12: plan's exit codes and JSON, and --once --dry-run changes nothing.
func TestPlanAndDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.name("a")
	e.write("a", bottleSpec{})
	e.write("b", bottleSpec{})

	if r := e.run("plan", "--detailed-exitcode", e.specs); r.code != 2 {
		t.Errorf("plan --detailed-exitcode with changes: want exit 2\n%s", r)
	}
	if r := e.run("plan", e.specs); r.code != 0 || !strings.Contains(r.stdout, "Plan: 6 to create") {
		t.Errorf("plan with changes: want exit 0 and 6 creates\n%s", r)
	}
	p := e.planJSON()
	if !p.Changes || len(p.Ops) != 6 || p.Instance != e.instance {
		t.Errorf("plan -o json: changes=%v, %d ops, instance %q; want true, 6, %q", p.Changes, len(p.Ops), p.Instance, e.instance)
	}
	var aOps []string
	for _, o := range p.Ops {
		if o.Bottle == a {
			aOps = append(aOps, o.Action+" "+o.Role+" "+o.Reason)
		}
	}
	if want := []string{"create network new", "create bundle new", "create guest new"}; !slices.Equal(aOps, want) {
		t.Errorf("plan -o json ops for %s: %v, want %v", a, aOps, want)
	}

	r := e.once("--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "Plan: 6 to create") {
		t.Errorf("--once --dry-run: want exit 0 and the plan\n%s", r)
	}
	if got := e.ids(); len(got) > 0 {
		t.Errorf("--dry-run created Docker objects: %v", got)
	}
	if m := mutations(e.calls()); len(m) > 0 {
		t.Errorf("--dry-run changed machines: %v", m)
	}

	e.mustOnce()
	if r := e.run("plan", "--detailed-exitcode", e.specs); r.code != 0 {
		t.Errorf("plan --detailed-exitcode without changes: want exit 0\n%s", r)
	}
	if p := e.planJSON(); p.Changes || p.Ops == nil || len(p.Ops) != 0 {
		t.Errorf("plan -o json without changes: changes=%v ops=%v; want false and []", p.Changes, p.Ops)
	}

	before, nCalls := e.ids(), len(e.calls())
	e.write("a", bottleSpec{Env: map[string]string{"X": "1"}})
	if r := e.run("plan", "--detailed-exitcode", e.specs); r.code != 2 || !strings.Contains(r.stdout, "guest") {
		t.Errorf("plan after an env change: want exit 2\n%s", r)
	}
	if r := e.once("--dry-run"); r.code != 0 {
		t.Errorf("--once --dry-run: want exit 0\n%s", r)
	}
	e.assertUnchanged(before, nCalls)
}

// Case 13: the deletion cap holds a mass removal whole until lifted.
func TestDeletionCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	all := []string{"a", "b", "c", "d", "keep"}
	for _, b := range all {
		e.write(b, bottleSpec{})
	}
	e.mustOnce()
	e.assertCounts(5)
	before, nCalls := e.ids(), len(e.calls())

	for _, b := range all[:4] {
		e.remove(b)
	}
	r := e.once("--max-deletes", "3")
	if r.code != 1 || !strings.Contains(r.stderr, "--allow-mass-delete") {
		t.Errorf("4 removals with --max-deletes 3: want exit 1 naming --allow-mass-delete\n%s", r)
	}
	if got := ops(t, r.stderr, ""); len(got) > 0 {
		t.Errorf("capped pass ran operations: %v", got)
	}
	e.assertUnchanged(before, nCalls)
	e.assertCounts(5)

	r = e.once("--max-deletes", "3", "--allow-mass-delete")
	if r.code != 0 {
		t.Errorf("--allow-mass-delete: want exit 0\n%s", r)
	}
	for _, b := range all[:4] {
		e.assertGone(e.name(b))
	}
	e.assertBottle(e.name("keep"))
	e.assertCounts(1)
}

func (e *env) status() map[string]statusJSON {
	e.t.Helper()
	r := e.run("status", "-o", "json", e.specs)
	if r.code != 0 {
		e.t.Fatalf("status -o json: want exit 0\n%s", r)
	}
	var sts []statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &sts); err != nil {
		e.t.Fatalf("status -o json does not parse: %v\n%s", err, r)
	}
	out := map[string]statusJSON{}
	for _, s := range sts {
		out[s.Bottle] = s
	}
	return out
}

type statusJSON struct {
	Bottle    string `json:"bottle"`
	State     string `json:"state"`
	Resources []struct {
		Role   string `json:"role"`
		Name   string `json:"name"`
		State  string `json:"state"`
		Health string `json:"health"`
		Subnet string `json:"subnet"`
		Addr   string `json:"addr"`
	} `json:"resources"`
}

// Case 14: status shows Ready bottles with their resources; down tears one
// down; a protected bottle survives its file's removal and down without
// --force.
func TestStatusDownAndProtect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b, p := e.name("a"), e.name("b"), e.name("p")
	e.write("a", bottleSpec{})
	e.write("b", bottleSpec{})
	e.write("p", bottleSpec{Protect: true})
	e.mustOnce()

	sts := e.status()
	if len(sts) != 3 {
		t.Errorf("status lists %d bottles, want 3: %v", len(sts), sts)
	}
	for _, n := range []string{a, b, p} {
		s := sts[n]
		if s.State != "Ready" || len(s.Resources) != 3 {
			t.Errorf("status of %s: %q with %d resources, want Ready with 3", n, s.State, len(s.Resources))
			continue
		}
		net, bun, guest := s.Resources[0], s.Resources[1], s.Resources[2]
		if net.Role != "network" || net.Name != netName(n) || net.Subnet != e.subnetOf(n) {
			t.Errorf("status of %s: network %+v, want %s with %s", n, net, netName(n), e.subnetOf(n))
		}
		if bun.Role != "bundle" || bun.Name != bundleName(n) || bun.State != "running" || bun.Health != "" || bun.Addr != e.bundleIP(n) {
			t.Errorf("status of %s: bundle %+v, want %s running at %s", n, bun, bundleName(n), e.bundleIP(n))
		}
		if guest.Role != "guest" || guest.Name != guestName(n) || guest.State != "running" {
			t.Errorf("status of %s: guest %+v, want %s running", n, guest, guestName(n))
		}
	}

	bIDs := func() []string {
		ids := e.ids()
		return []string{ids["network/"+netName(b)], ids["container/"+bundleName(b)]}
	}
	bBefore := bIDs()

	// down NAME tears that bottle down, whatever its spec says.
	r := e.run("down", "--dir", e.specs, a)
	if r.code != 0 {
		t.Errorf("down %s: want exit 0\n%s", a, r)
	}
	if got, want := opStrings(ops(t, r.stderr, a)), []string{"delete guest", "delete bundle", "delete network"}; !slices.Equal(got, want) {
		t.Errorf("down %s ran %v, want %v", a, got, want)
	}
	e.assertGone(a)
	if _, ok := e.status()[a]; ok {
		t.Errorf("status still lists %s after down", a)
	}
	e.remove("a")

	// A protected bottle outlives its file.
	e.remove("p")
	r = e.mustOnce()
	if got := ops(t, r.stderr, p); len(got) > 0 {
		t.Errorf("the pass acted on the protected bottle: %v", got)
	}
	e.assertBottle(p)
	if st := e.status()[p].State; st != "Orphaned" {
		t.Errorf("status of the protected bottle without a file: %q, want Orphaned", st)
	}
	r = e.run("down", "--dir", e.specs, p)
	if r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("down of a protected bottle without --force: want exit 1 naming --force\n%s", r)
	}
	e.assertBottle(p)
	r = e.run("down", "--force", "--dir", e.specs, p)
	if r.code != 0 {
		t.Errorf("down --force: want exit 0\n%s", r)
	}
	e.assertGone(p)
	e.assertBottle(b)
	if got := bIDs(); !slices.Equal(bBefore, got) {
		t.Errorf("the untouched bottle's objects changed: %v → %v", bBefore, got)
	}
	e.assertCounts(1)
}

// Case 15: a host secret reaches the guest and nowhere else: not the logs,
// the plan, Docker, smolvm's argv or the state directory.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := "e2e-secret-" + randHex(12)
	plain := "e2e-plain-" + randHex(12) // a spec env value: also kept off argv
	e.extraEnv = []string{"E2E_SECRET=" + secret}
	a := e.name("a")
	e.write("a", bottleSpec{EnvFromHost: []string{"E2E_SECRET"}, Env: map[string]string{"PLAIN": plain}})

	var outputs []result
	outputs = append(outputs, e.run("plan", e.specs), e.run("plan", "-o", "json", e.specs), e.once("--dry-run"))
	outputs = append(outputs, e.mustOnce("-v", "4"))
	e.assertBottle(a)
	outputs = append(outputs, e.once("-v", "4"), e.run("status", "-o", "json", e.specs), e.run("status", e.specs))
	// A recreate passes the secret again.
	e.write("a", bottleSpec{EnvFromHost: []string{"E2E_SECRET"}, Env: map[string]string{"PLAIN": plain, "MORE": "x"}})
	outputs = append(outputs, e.run("plan", "-o", "json", e.specs), e.mustOnce("-v", "4"))

	for i, r := range outputs {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("output %d shows the secret\n%s", i, r)
		}
	}
	// The argv of every smolvm call (calls.jsonl also records each call's
	// environment, where forwarded values belong).
	for _, c := range e.calls() {
		argv := strings.Join(c.Args, " ")
		if strings.Contains(argv, secret) {
			t.Errorf("smolvm argv holds the secret: %q", c.Args)
		}
		if strings.Contains(argv, plain) {
			t.Errorf("smolvm argv holds a spec env value: %q", c.Args)
		}
	}
	var sawName bool
	for _, c := range e.calls() {
		if c.op() == "create" && c.has("-e", "E2E_SECRET") {
			sawName = true
		}
	}
	if !sawName {
		t.Errorf("no create passes -e E2E_SECRET (by name)")
	}
	// The guest did get it: the emulator's exec runs with the machine's env.
	out, err := e.smolvm("machine", "exec", "--name", guestName(a), "--", "sh", "-c", `printf %s "$E2E_SECRET"`)
	if err != nil || string(out) != secret {
		t.Errorf("the guest's E2E_SECRET is %q (%v), want the host's value", out, err)
	}

	for name, c := range e.containers() {
		b, _ := json.Marshal(e.inspect(c.ID))
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(plain)) {
			t.Errorf("container %s holds an env value (labels, env or command)", name)
		}
	}
	for name, n := range e.networks() {
		b, _ := json.Marshal(n)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("network %s holds the secret", name)
		}
	}
	ms, err := e.smolvm("machine", "ls", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []machine
	_ = json.Unmarshal(ms, &list)
	for _, m := range list {
		b, _ := json.Marshal(m.Labels)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("machine %s's labels hold the secret", m.Name)
		}
	}
	_ = filepath.WalkDir(e.state, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("state file %s holds the secret", p)
		}
		return nil
	})
}

// With smolvm gone (here: --smolvm naming a binary that does not exist),
// removing a smolvm bottle's spec holds the bottle: its network, bundle
// and machine stay, the pass exits 1 saying why, and down refuses it
// unless told to abandon the guest.
func TestUnobservableSmolvmHoldsItsBottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.name("a")
	e.write("a", bottleSpec{})
	e.write("b", bottleSpec{}) // an empty directory would block the teardown anyway
	e.mustOnce()
	before := e.ids()
	gone := []string{"--smolvm", filepath.Join(e.root, "no-such-smolvm")}

	e.remove("a")
	r := e.once(gone...)
	if r.code != 1 || !strings.Contains(r.stderr, "bottle "+a+": unobservable: spec file removed, but no guest of this bottle is seen") {
		t.Errorf("--once without smolvm: want exit 1 naming the held bottle\n%s", r)
	}
	if got := ops(t, r.stderr, a); len(got) > 0 {
		t.Errorf("operations on the bottle whose machine cannot be seen: %v", got)
	}
	e.assertBottle(a)
	if after := e.ids(); !maps.Equal(before, after) {
		t.Errorf("resources changed: %v → %v", before, after)
	}

	r = e.run("down", append(gone, "--force", "--dir", e.specs, a)...)
	if r.code != 1 || !strings.Contains(r.stderr, "--abandon-guest") {
		t.Errorf("down --all --force without smolvm: want exit 1 naming --abandon-guest\n%s", r)
	}
	e.assertBottle(a)

	// With smolvm back, the removal goes through as usual.
	e.mustOnce()
	e.assertGone(a)
}
