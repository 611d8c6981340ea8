package smolvm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// These tests drive a smolvm binary: the emulator, and a real smolvm when
// one is on PATH (see backend_test.go).

func TestLifecycle(t *testing.T) { eachBackend(t, testLifecycle) }

func testLifecycle(t *testing.T, b *backend) {
	ctx := context.Background()
	d := b.driver(t, Options{})
	w := b.want(t)

	created, err := d.Create(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	r := observeOne(t, d, w.Name)
	if r.State != bottle.StateRunning || r.Detail != "running" {
		t.Errorf("after create: state %q (%s), want running", r.State, r.Detail)
	}
	if !reflect.DeepEqual(r.Labels, machineLabels(w)) || r.Bottle != w.Bottle || r.Hash != w.Labels[bottle.LabelHash] ||
		r.Instance != w.Labels[bottle.LabelInstance] || r.HashVersion != "1" || r.Kind != "smolvm" || r.Role != bottle.RoleGuest {
		t.Errorf("observed %+v, want the labels of %+v", r, w.Labels)
	}
	if created.Name != r.Name || created.Hash != r.Hash || created.State != r.State {
		t.Errorf("Create returned %+v, Observe saw %+v", created, r)
	}

	for i := 0; i < 2; i++ { // stop is idempotent
		if err := d.Stop(ctx, r); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		if got := observeOne(t, d, w.Name).State; got != bottle.StateStopped {
			t.Fatalf("after stop %d: state %q", i, got)
		}
	}
	for i := 0; i < 2; i++ { // start is idempotent
		if err := d.Start(ctx, r); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if got := observeOne(t, d, w.Name).State; got != bottle.StateRunning {
			t.Fatalf("after start %d: state %q", i, got)
		}
	}

	if err := d.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	rs, err := d.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range rs {
		if x.Instance == w.Labels[bottle.LabelInstance] {
			t.Errorf("after delete, still observed: %+v", x)
		}
	}
	if err := d.Delete(ctx, r); err != nil {
		t.Errorf("delete of a deleted machine: %v", err)
	}
}

func TestDeleteMissing(t *testing.T) { eachBackend(t, testDeleteMissing) }

func testDeleteMissing(t *testing.T, b *backend) {
	d := b.driver(t, Options{})
	if err := d.Delete(context.Background(), bottle.Resource{Name: "bottle-nothing-" + randHex(t, 3)}); err != nil {
		t.Fatal(err)
	}
}

func TestNameCollision(t *testing.T) { eachBackend(t, testNameCollision) }

func testNameCollision(t *testing.T, b *backend) {
	d := b.driver(t, Options{})
	w := b.want(t)
	// Someone else's machine of that name, without our labels.
	if _, stderr, code := b.smolvm(t, "machine", "create", "--name", w.Name, "--image", b.image, "--net"); code != 0 {
		t.Fatalf("create foreign machine: exit %d: %s", code, stderr)
	}
	_, err := d.Create(context.Background(), w)
	if !cerrdefs.IsConflict(err) {
		t.Fatalf("Create = %v, want a conflict", err)
	}
	if !strings.Contains(err.Error(), `"`+w.Name+`"`) || !strings.Contains(err.Error(), "does not manage") {
		t.Errorf("error %q does not name the foreign machine", err)
	}
	if b.emulated {
		if n := b.countCalls(t, "machine", "create"); n != 1 {
			t.Errorf("%d machine create calls, want only the foreign one", n)
		}
	}
	// Asked to stop, start or delete it by name, the driver refuses and
	// names it.
	foreign := bottle.Resource{Name: w.Name}
	for op, f := range map[string]func(context.Context, bottle.Resource) error{"Stop": d.Stop, "Start": d.Start, "Delete": d.Delete} {
		if err := f(context.Background(), foreign); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), `"`+w.Name+`"`) {
			t.Errorf("%s of the foreign machine = %v, want a conflict naming it", op, err)
		}
	}
	if b.emulated {
		for _, sub := range []string{"stop", "start", "delete"} {
			if n := b.countCalls(t, "machine", sub); n != 0 {
				t.Errorf("%d machine %s calls on the foreign machine", n, sub)
			}
		}
	}
	if _, stderr, code := b.smolvm(t, "machine", "status", "--name", w.Name, "--json"); code != 0 {
		t.Errorf("the foreign machine is gone: exit %d: %s", code, stderr)
	}
	// The foreign machine is neither ours nor touched.
	rs, err := d.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Name == w.Name {
			t.Errorf("foreign machine observed as ours: %+v", r)
		}
	}
}

func TestConcurrentCreate(t *testing.T) { eachBackend(t, testConcurrentCreate) }

// Two creates of the same bottle race: smolvm's create reservation (or our
// pre-create listing) lets exactly one win, and the other is a conflict.
func testConcurrentCreate(t *testing.T, b *backend) {
	d := b.driver(t, Options{})
	w := b.want(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = d.Create(context.Background(), w)
		}()
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case cerrdefs.IsConflict(err):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflicts != 1 {
		t.Errorf("%d created, %d conflicts; want 1 and 1 (%v)", ok, conflicts, errs)
	}
}

func TestClassifiedErrors(t *testing.T) { eachBackend(t, testClassifiedErrors) }

// Each class is produced by the backend itself, so the quoted texts are
// checked against what the binary really prints.
func testClassifiedErrors(t *testing.T, b *backend) {
	ctx := context.Background()
	d := b.driver(t, Options{})
	missing := bottle.Resource{Name: "bottle-missing-" + randHex(t, 3)}

	t.Run("start missing", func(t *testing.T) {
		if err := d.Start(ctx, missing); !cerrdefs.IsNotFound(err) {
			t.Errorf("Start = %v, want not found", err)
		}
	})
	t.Run("stop missing", func(t *testing.T) {
		if err := d.Stop(ctx, missing); !cerrdefs.IsNotFound(err) {
			t.Errorf("Stop = %v, want not found", err)
		}
	})
	t.Run("status missing", func(t *testing.T) {
		_, err := d.exec(ctx, call{args: []string{"machine", "status", "--name", missing.Name, "--json"}, timeout: time.Minute})
		if !cerrdefs.IsNotFound(err) {
			t.Errorf("status = %v, want not found", err)
		}
	})
	t.Run("create existing", func(t *testing.T) {
		w := b.want(t)
		c, err := d.createCall(w, source{ref: b.image})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			_, err = d.exec(ctx, c)
		}
		if !cerrdefs.IsConflict(err) {
			t.Errorf("second create = %v, want conflict", err)
		}
		var ce *CmdError
		if !errors.As(err, &ce) || ce.ExitCode != 1 {
			t.Errorf("error %#v, want a *CmdError with exit 1", err)
		}
	})
	t.Run("invalid cidr", func(t *testing.T) {
		w := b.want(t)
		w.Guest.AllowCIDRs = []string{"not-a-cidr"}
		_, err := d.Create(ctx, w)
		var ce *CmdError
		if !cerrdefs.IsInvalidArgument(err) || !errors.As(err, &ce) || ce.ExitCode != 2 {
			t.Errorf("Create = %v, want invalid argument with exit 2", err)
		}
	})
	t.Run("invalid name", func(t *testing.T) {
		w := b.want(t)
		w.Name = "bottle." + w.Bottle
		_, err := d.Create(ctx, w)
		if !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("Create = %v, want invalid argument", err)
		}
	})
	t.Run("injected failure is unclassified", func(t *testing.T) {
		b.emulatorOnly(t, "fault injection")
		w := b.want(t)
		fd := b.driver(t, Options{}, "SMOLVM_EMU_FAIL_NEXT=create@"+w.Name)
		_, err := fd.Create(ctx, w)
		var ce *CmdError
		if err == nil || !errors.As(err, &ce) || ce.ExitCode != 1 ||
			cerrdefs.IsConflict(err) || cerrdefs.IsNotFound(err) || cerrdefs.IsInvalidArgument(err) {
			t.Fatalf("Create = %v, want an unclassified *CmdError", err)
		}
		if !strings.Contains(err.Error(), "Error: injected failure: machine create") {
			t.Errorf("error %q does not carry smolvm's stderr", err)
		}
	})
}

func TestHangTimesOut(t *testing.T) { eachBackend(t, testHangTimesOut) }

func testHangTimesOut(t *testing.T, b *backend) {
	b.emulatorOnly(t, "SMOLVM_EMU_HANG")
	tests := []struct {
		hang string
		op   func(d *Driver, w bottle.Want) error
	}{
		{hang: "create", op: func(d *Driver, w bottle.Want) error { _, err := d.Create(context.Background(), w); return err }},
		{hang: "ls", op: func(d *Driver, _ bottle.Want) error { _, err := d.Observe(context.Background()); return err }},
		{hang: "version", op: func(d *Driver, _ bottle.Want) error { _, err := d.Version(context.Background()); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.hang, func(t *testing.T) {
			const timeout = 500 * time.Millisecond
			d := b.driver(t, Options{Timeout: timeout, CreateTimeout: timeout}, "SMOLVM_EMU_HANG="+tt.hang)
			w := b.want(t)
			start := time.Now()
			err := tt.op(d, w)
			elapsed := time.Since(start)
			if !cerrdefs.IsDeadlineExceeded(err) {
				t.Fatalf("error = %v, want a deadline", err)
			}
			// Create makes --version and ls calls first, each well under a
			// timeout; the slack covers them and a loaded machine.
			if elapsed > timeout+3*time.Second {
				t.Errorf("returned after %v, want about %v", elapsed, timeout)
			}
			// A listing that hangs leaves smolvm's bottles held, like
			// a missing binary: the other guest kinds go on.
			if tt.hang == "ls" && !errors.Is(err, bottle.ErrUnobservable) {
				t.Errorf("Observe with ls hanging = %v, want ErrUnobservable", err)
			}
			var ce *CmdError
			if !errors.As(err, &ce) || ce.ExitCode != -1 {
				t.Errorf("error %#v, want a *CmdError with exit -1", err)
			}
			eventually(t, 3*time.Second, "no smolvm process left", func() bool { return len(b.processesOf(t)) == 0 })
		})
	}
}

func TestCreatedButNotStarted(t *testing.T) { eachBackend(t, testCreatedButNotStarted) }

// A create that stops between create and start leaves a created machine;
// the next pass observes it as such and starts it.
func testCreatedButNotStarted(t *testing.T, b *backend) {
	b.emulatorOnly(t, "fault injection")
	for _, fault := range []string{"SMOLVM_EMU_CRASH_AFTER_CREATE=1", "SMOLVM_EMU_FAIL_NEXT=start"} {
		t.Run(fault, func(t *testing.T) {
			ctx := context.Background()
			w := b.want(t)
			if _, err := b.driver(t, Options{}, fault).Create(ctx, w); err == nil {
				t.Fatal("Create succeeded despite the fault")
			}
			// Next pass: a fresh driver, as after a restart.
			d := b.driver(t, Options{})
			r := observeOne(t, d, w.Name)
			if r.State != bottle.StateCreated || r.Hash != w.Labels[bottle.LabelHash] {
				t.Fatalf("observed %+v, want created with our labels", r)
			}
			if err := d.Start(ctx, r); err != nil {
				t.Fatal(err)
			}
			if got := observeOne(t, d, w.Name).State; got != bottle.StateRunning {
				t.Errorf("after start: %q", got)
			}
		})
	}
}

func TestOldVersionRefused(t *testing.T) { eachBackend(t, testOldVersionRefused) }

func testOldVersionRefused(t *testing.T, b *backend) {
	b.emulatorOnly(t, "SMOLVM_EMU_VERSION")
	d := b.driver(t, Options{}, "SMOLVM_EMU_VERSION=1.7.0")
	if v, err := d.Version(context.Background()); err != nil || v != "1.7.0" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	_, err := d.Create(context.Background(), b.want(t))
	if !cerrdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "smolvm 1.7.0 is too old") {
		t.Fatalf("Create = %v, want refusal", err)
	}
	if n := b.countCalls(t, "machine", "create"); n != 0 {
		t.Errorf("%d machine create calls on a refused version", n)
	}
}

func TestDeadMachineRestarted(t *testing.T) { eachBackend(t, testDeadMachineRestarted) }

func testDeadMachineRestarted(t *testing.T, b *backend) {
	b.emulatorOnly(t, "__emu kill")
	ctx := context.Background()
	d := b.driver(t, Options{})
	w := b.want(t)
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	b.emu(t, "kill", w.Name)
	var r bottle.Resource
	eventually(t, 5*time.Second, "the dead machine to show as stopped", func() bool {
		r = observeOne(t, d, w.Name)
		return r.State == bottle.StateStopped
	})
	if r.Detail != "stopped" {
		t.Errorf("detail %q", r.Detail)
	}
	if err := d.Start(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := observeOne(t, d, w.Name).State; got != bottle.StateRunning {
		t.Errorf("after restart: %q", got)
	}
}

func TestObserveListsOnce(t *testing.T) { eachBackend(t, testObserveListsOnce) }

func testObserveListsOnce(t *testing.T, b *backend) {
	b.emulatorOnly(t, "calls.jsonl")
	ctx := context.Background()
	d := b.driver(t, Options{})
	for i := 0; i < 3; i++ {
		if _, err := d.Create(ctx, b.want(t)); err != nil {
			t.Fatal(err)
		}
	}
	before := len(b.calls(t))
	rs, err := d.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Errorf("observed %d machines, want 3", len(rs))
	}
	after := b.calls(t)[before:]
	if len(after) != 1 || strings.Join(after[0], " ") != "machine ls --json" {
		t.Errorf("Observe made calls %q, want exactly one machine ls --json", after)
	}
}

func TestSecretsNotInArgv(t *testing.T) { eachBackend(t, testSecretsNotInArgv) }

// Secrets reach the guest through smolvm's environment (-e KEY), never its
// command line.
func testSecretsNotInArgv(t *testing.T, b *backend) {
	ctx := context.Background()
	d := b.driver(t, Options{})
	w := b.want(t)
	withEnv(&w, map[string]string{"API_TOKEN": secretToken}, map[string]string{"GH_TOKEN": secretHost})
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	if b.emulated {
		for _, args := range b.calls(t) {
			line := strings.Join(args, " ")
			if strings.Contains(line, secretToken) || strings.Contains(line, secretHost) {
				t.Errorf("argv carries a secret: %s", line)
			}
		}
	}
	out, stderr, code := b.smolvm(t, "machine", "exec", "--name", w.Name, "--", "sh", "-c", `printf '%s %s' "$API_TOKEN" "$GH_TOKEN"`)
	if code != 0 {
		t.Fatalf("exec: exit %d: %s", code, stderr)
	}
	if want := secretToken + " " + secretHost; out != want {
		t.Errorf("guest sees %q, want %q", out, want)
	}
}

func TestFrozenReplaced(t *testing.T) { eachBackend(t, testFrozenReplaced) }

// smolvm refuses to start a frozen machine (a fork base); the driver reports
// it Broken, and it can be deleted to be replaced.
func testFrozenReplaced(t *testing.T, b *backend) {
	b.emulatorOnly(t, "__emu freeze: the driver never forks")
	ctx := context.Background()
	d := b.driver(t, Options{})
	w := b.want(t)
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	b.emu(t, "freeze", w.Name)
	r := observeOne(t, d, w.Name)
	if r.Broken != frozenBroken || r.Detail != "frozen" {
		t.Fatalf("observed %+v, want Broken %q", r, frozenBroken)
	}
	err := d.Start(ctx, r)
	if err == nil || !strings.Contains(err.Error(), "is frozen because") {
		t.Errorf("Start of a frozen machine = %v, want smolvm's refusal", err)
	}
	if err := d.Delete(ctx, r); err != nil {
		t.Fatalf("Delete of a frozen machine: %v", err)
	}
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
}

func TestWorkspace(t *testing.T) { eachBackend(t, testWorkspace) }

// The workspace reaches smolvm as -v HOST:GUEST[:ro], which it takes:
// the emulator records it as smolvm does; a real guest reads the host's file
// and, read-only, cannot write.
func testWorkspace(t *testing.T, b *backend) {
	ctx := context.Background()
	d := b.driver(t, Options{})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "from-host"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := b.want(t)
	w.Guest.Workspace = &spec.Workspace{HostPath: dir, GuestPath: "/work", ReadOnly: true}
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	if b.emulated {
		var create string
		for _, args := range b.calls(t) {
			if len(args) > 1 && args[1] == "create" {
				create = strings.Join(args, " ")
			}
		}
		if !strings.Contains(create, " -v "+dir+":/work:ro") {
			t.Errorf("create argv lacks -v %s:/work:ro: %s", dir, create)
		}
		out, _, _ := b.smolvm(t, "machine", "ls", "-v")
		if !strings.Contains(out, "Mount: "+dir+" -> /work (ro)") {
			t.Errorf("smolvm does not list the mount:\n%s", out)
		}
		return
	}
	if out, stderr, code := b.smolvm(t, "machine", "exec", "--name", w.Name, "--", "cat", "/work/from-host"); code != 0 || out != "hello" {
		t.Errorf("guest reads %q (exit %d: %s), want the host's file", out, code, stderr)
	}
	if _, _, code := b.smolvm(t, "machine", "exec", "--name", w.Name, "--", "sh", "-c", "echo x > /work/from-guest"); code == 0 {
		t.Error("the guest wrote to a read-only workspace")
	}
}
