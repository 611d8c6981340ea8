package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
)

const testDebounce = 100 * time.Millisecond

// watching is a Watcher running over a rig, with its passes on a channel.
type watching struct {
	*rig
	w      *Watcher
	passes chan PassReport
	stop   context.CancelFunc
	done   chan error
}

func startWatch(t *testing.T, g *rig, opts WatchOptions) *watching {
	t.Helper()
	if opts.Debounce == 0 {
		opts.Debounce = testDebounce
	}
	if opts.Resync == 0 {
		opts.Resync = time.Hour // only the tests that want a resync get one
	}
	x := &watching{rig: g, passes: make(chan PassReport, 100), done: make(chan error, 1)}
	opts.OnPass = func(r PassReport) { x.passes <- r }
	x.w = g.r.Watcher(opts)
	ctx, cancel := context.WithCancel(context.Background())
	x.stop = cancel
	go func() { x.done <- x.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-x.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return x
}

// waitPass waits for a pass that satisfies ok, skipping the others.
func (x *watching) waitPass(ok func(PassReport) bool, what string) PassReport {
	x.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-x.passes:
			if ok(r) {
				return r
			}
		case <-deadline:
			x.t.Fatalf("no pass %s within 5s", what)
			return PassReport{}
		}
	}
}

func triggeredBy(reason string) func(PassReport) bool {
	return func(r PassReport) bool { return slices.Contains(r.Trigger, reason) }
}

func anyPass(PassReport) bool { return true }

// settle lets a change play out: past the quiet period and a removal's
// confirmation, then one more pass, which runs after everything before it.
func (x *watching) settle() {
	x.t.Helper()
	time.Sleep(3 * testDebounce) // the window in which a tentative delete could still happen
	x.w.Trigger("test")
	x.waitPass(triggeredBy("test"), "triggered by the test")
}

func mustDo(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

var changedA = specFor("a", "env: {MODE: fast}")

// guestRecreated is the whole of an env change: the guest only.
var guestRecreated = []string{"delete bottle-a", "create bottle-a"}

func TestWatchSavePatterns(t *testing.T) {
	tests := []struct {
		name string
		act  func(t *testing.T, dir, outside string)
		want []string
	}{
		{"write temp and rename", func(t *testing.T, dir, _ string) {
			tmp := filepath.Join(dir, ".a.yaml.tmp1234")
			mustDo(t, os.WriteFile(tmp, []byte(changedA), 0o644), os.Rename(tmp, filepath.Join(dir, "a.yaml")))
		}, guestRecreated},
		{"vim backupcopy=no", func(t *testing.T, dir, _ string) {
			a := filepath.Join(dir, "a.yaml")
			mustDo(t, os.WriteFile(filepath.Join(dir, ".a.yaml.swp"), []byte("swap"), 0o600))
			mustDo(t, os.WriteFile(filepath.Join(dir, "4913"), nil, 0o644), os.Remove(filepath.Join(dir, "4913")))
			mustDo(t, os.Rename(a, a+"~"))
			f, err := os.Create(a)
			mustDo(t, err)
			half := len(changedA) / 2
			_, err1 := f.WriteString(changedA[:half])
			time.Sleep(5 * time.Millisecond) // a write in two pieces, as a slow disk would
			_, err2 := f.WriteString(changedA[half:])
			mustDo(t, err1, err2, f.Close(), os.Remove(a+"~"), os.Remove(filepath.Join(dir, ".a.yaml.swp")))
		}, guestRecreated},
		{"emacs", func(t *testing.T, dir, _ string) {
			a := filepath.Join(dir, "a.yaml")
			mustDo(t, os.Symlink("root@host.1234", filepath.Join(dir, ".#a.yaml")))
			mustDo(t, os.WriteFile(filepath.Join(dir, "#a.yaml#"), []byte(changedA), 0o644))
			mustDo(t, os.Rename(a, a+"~"), os.WriteFile(a, []byte(changedA), 0o644))
			mustDo(t, os.Remove(filepath.Join(dir, "#a.yaml#")), os.Remove(filepath.Join(dir, ".#a.yaml")))
		}, guestRecreated},
		{"vs code in place", func(t *testing.T, dir, _ string) {
			mustDo(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(changedA), 0o644))
		}, guestRecreated},
		{"sed -i", func(t *testing.T, dir, _ string) {
			tmp := filepath.Join(dir, "sedAb12Cd")
			mustDo(t, os.WriteFile(tmp, []byte(changedA), 0o644), os.Chmod(tmp, 0o644), os.Rename(tmp, filepath.Join(dir, "a.yaml")))
		}, guestRecreated},
		{"mv out and back within the debounce", func(t *testing.T, dir, outside string) {
			a, o := filepath.Join(dir, "a.yaml"), filepath.Join(outside, "a.yaml")
			mustDo(t, os.Rename(a, o))
			time.Sleep(testDebounce / 4)
			mustDo(t, os.Rename(o, a))
		}, nil},
		{"rename to another spec file", func(t *testing.T, dir, _ string) {
			mustDo(t, os.Rename(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "alice.yml")))
		}, nil},
		{"mv out", func(t *testing.T, dir, outside string) {
			mustDo(t, os.Rename(filepath.Join(dir, "a.yaml"), filepath.Join(outside, "a.yaml")))
		}, []string{"delete bottle-a", "delete bottle-a-bundle", "delete bottle-a"}},
		{"chmod only", func(t *testing.T, dir, _ string) {
			mustDo(t, os.Chmod(filepath.Join(dir, "a.yaml"), 0o600))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, "i1")
			g.write("a.yaml", specFor("a"))
			g.write("b.yaml", specFor("b"))
			x := startWatch(t, g, WatchOptions{})
			x.waitPass(anyPass, "at start")
			g.writes()
			tt.act(t, g.dir, t.TempDir())
			x.settle()
			got := g.writes()
			// Teardown runs guest first; writes() lists by driver.
			want := slices.Clone(tt.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("writes = %q, want %q", got, want)
			}
		})
	}
}

// TestWatchTeardownWaitsAQuietPeriod checks that a removed spec is held for
// one pass and torn down by the confirming pass, not the first.
func TestWatchTeardownWaitsAQuietPeriod(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b")) // an emptied directory prunes nothing
	x := startWatch(t, g, WatchOptions{})
	x.waitPass(anyPass, "at start")
	g.writes()
	mustDo(t, os.Remove(filepath.Join(g.dir, "a.yaml")))
	first := x.waitPass(triggeredBy("file"), "after the removal")
	if first.Held != 1 || first.Ops != 0 || len(g.writes()) != 0 {
		t.Fatalf("first pass after removal: held %d, ops %d; want the teardown held", first.Held, first.Ops)
	}
	second := x.waitPass(triggeredBy("confirm removal"), "confirming the removal")
	if second.Ops != 3 || second.Duration <= 0 {
		t.Fatalf("confirming pass applied %d ops, want 3", second.Ops)
	}
}

func TestWatchGitCheckoutBurst(t *testing.T) {
	g := newRig(t, "i1")
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4},
		g.net, g.bun, map[string]Driver{"smolvm": g.vm}, testr.New(t))
	for i := range 20 {
		g.write(fmt.Sprintf("b%02d.yaml", i), specFor(fmt.Sprintf("b%02d", i)))
	}
	x := startWatch(t, g, WatchOptions{})
	x.waitPass(anyPass, "at start")
	g.writes()
	// git checkout unlinks each file and writes the new one.
	for i := range 20 {
		p := filepath.Join(g.dir, fmt.Sprintf("b%02d.yaml", i))
		mustDo(t, os.Remove(p), os.WriteFile(p, []byte(specFor(fmt.Sprintf("b%02d", i), "env: {REV: two}")), 0o644))
	}
	r := x.waitPass(triggeredBy("file"), "after the checkout")
	if r.Ops != 40 || r.Held != 0 {
		t.Fatalf("one pass should recreate the 20 guests: ops %d, held %d\n%s", r.Ops, r.Held, r.Pass.Plan)
	}
	x.settle()
	got := g.writes()
	if len(got) != 40 || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "bundle") }) {
		t.Fatalf("writes = %q, want 20 guest deletes and creates only", got)
	}
}

func TestWatchConfigMapSwap(t *testing.T) {
	g := newRig(t, "i1")
	v1, v2 := filepath.Join(g.dir, "..2026_01_01_00_00_00.1"), filepath.Join(g.dir, "..2026_01_01_00_01_00.2")
	mustDo(t, os.Mkdir(v1, 0o755), os.WriteFile(filepath.Join(v1, "a.yaml"), []byte(specFor("a")), 0o644))
	mustDo(t, os.Symlink(filepath.Base(v1), filepath.Join(g.dir, "..data")), os.Symlink("..data/a.yaml", filepath.Join(g.dir, "a.yaml")))
	x := startWatch(t, g, WatchOptions{})
	if r := x.waitPass(anyPass, "at start"); r.Ops != 3 {
		t.Fatalf("first pass: %d ops, want 3", r.Ops)
	}
	g.writes()
	// The kubelet's AtomicWriter: new timestamped dir, new link, rename
	// over ..data, old dir removed. a.yaml itself never changes.
	mustDo(t, os.Mkdir(v2, 0o755), os.WriteFile(filepath.Join(v2, "a.yaml"), []byte(changedA), 0o644))
	mustDo(t, os.Symlink(filepath.Base(v2), filepath.Join(g.dir, "..data_tmp")), os.Rename(filepath.Join(g.dir, "..data_tmp"), filepath.Join(g.dir, "..data")))
	mustDo(t, os.RemoveAll(v1))
	x.waitPass(triggeredBy("file"), "after the swap")
	x.settle()
	if got := g.writes(); !slices.Equal(got, guestRecreated) {
		t.Fatalf("writes = %q, want %q", got, guestRecreated)
	}
}

// injectWatcher is a dirWatcher whose events and errors the test sends.
type injectWatcher struct {
	events chan fsnotify.Event
	errs   chan error
}

func (f *injectWatcher) Add(string) error { return nil }
func (f *injectWatcher) Close() error     { return nil }
func (f *injectWatcher) Channels() (<-chan fsnotify.Event, <-chan error) {
	return f.events, f.errs
}

func TestWatchErrorsRelist(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	var mu sync.Mutex
	var made []*injectWatcher
	opts := WatchOptions{watchRetry: 10 * time.Millisecond, newWatcher: func() (dirWatcher, error) {
		mu.Lock()
		defer mu.Unlock()
		f := &injectWatcher{events: make(chan fsnotify.Event), errs: make(chan error)}
		made = append(made, f)
		return f, nil
	}}
	x := startWatch(t, g, opts)
	x.waitPass(anyPass, "at start")
	current := func() *injectWatcher {
		mu.Lock()
		defer mu.Unlock()
		return made[len(made)-1]
	}
	// Drift that only a full relist finds: no event says so.
	g.bun.mutate("bottle-a-bundle", func(r *bottle.Resource) { r.State, r.Detail = bottle.StateStopped, "exited (137)" })
	current().errs <- fmt.Errorf("read: %w", fsnotify.ErrEventOverflow)
	if r := x.waitPass(triggeredBy("event overflow"), "after an overflow"); r.Ops == 0 {
		t.Fatalf("the relist after an overflow did not heal the bundle:\n%s", r.Pass.Plan)
	}
	first := current()
	first.errs <- errors.New("inotify: broken")
	// The relist after the error and the one after the restart may be one
	// pass or two.
	var seen []string
	x.waitPass(func(r PassReport) bool {
		seen = append(seen, r.Trigger...)
		return slices.Contains(seen, "watch error") && slices.Contains(seen, "watch started")
	}, "after a watch error and restart")
	if current() == first {
		t.Fatal("the watcher was not restarted after an error")
	}
}

func TestWatchResync(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	x := startWatch(t, g, WatchOptions{Resync: 200 * time.Millisecond})
	x.waitPass(anyPass, "at start")
	g.writes()
	g.vm.mutate("bottle-a", func(r *bottle.Resource) { r.State = bottle.StateStopped })
	x.waitPass(triggeredBy("resync"), "by resync")
	if got := g.writes(); !slices.Equal(got, []string{"start bottle-a"}) {
		t.Fatalf("resync writes = %q, want the stopped guest started", got)
	}
	x.waitPass(triggeredBy("resync"), "by a second resync")
}

func TestWatchDirRemovedAndRecreated(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	x := startWatch(t, g, WatchOptions{watchRetry: 20 * time.Millisecond})
	x.waitPass(anyPass, "at start")
	g.writes()
	if !x.w.Ready() {
		t.Fatal("not ready after a pass with the directory watched")
	}
	mustDo(t, os.RemoveAll(g.dir))
	r := x.waitPass(func(r PassReport) bool { return r.Err != nil }, "failing on the missing directory")
	if r.Pass != nil || !errors.Is(r.Err, os.ErrNotExist) {
		t.Fatalf("pass over a missing directory: %v", r.Err)
	}
	if got := g.writes(); len(got) != 0 {
		t.Fatalf("a missing directory changed things: %q", got)
	}
	mustDo(t, os.Mkdir(g.dir, 0o755))
	g.write("a.yaml", specFor("a"))
	x.waitPass(triggeredBy("watch started"), "after the directory came back")
	// The new watch sees edits: a change is applied long before any resync.
	g.write("a.yaml", changedA)
	x.waitPass(func(r PassReport) bool { return r.Ops > 0 }, "applying the edit")
	if got := g.writes(); !slices.Equal(got, guestRecreated) {
		t.Fatalf("writes = %q, want %q", got, guestRecreated)
	}
	if !x.w.Ready() {
		t.Fatal("not ready after the watch came back")
	}
}

// badImage fails to create guests of images starting with bad, as a broken
// spec would, with err (or "image not found").
type badImage struct {
	*fakeDriver
	bad string
	err error
}

func (b badImage) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	if strings.HasPrefix(w.Guest.Image, b.bad) {
		b.mu.Lock()
		b.calls = append(b.calls, "create "+w.Name)
		b.mu.Unlock()
		if b.err != nil {
			return bottle.Resource{}, b.err
		}
		return bottle.Resource{}, errors.New("image not found")
	}
	return b.fakeDriver.Create(ctx, w)
}

func TestWatchBackoffGrowsAndResetsOnFix(t *testing.T) {
	g := newRig(t, "i1")
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4},
		g.net, g.bun, map[string]Driver{"smolvm": badImage{fakeDriver: g.vm, bad: "broken:1"}}, testr.New(t))
	g.write("a.yaml", strings.Replace(specFor("a"), "agent:1", "broken:1", 1))
	base := 100 * time.Millisecond
	x := startWatch(t, g, WatchOptions{Backoff: Backoff{Base: base, Max: time.Minute}})
	var last Status
	for n := 1; n <= 4; n++ {
		x.waitPass(func(r PassReport) bool { return r.Failed == 1 }, fmt.Sprintf("failing for the %d. time", n))
		sts, err := g.r.Status().All()
		mustDo(t, err)
		last = sts[0]
		want := base << (n - 1)
		if last.State != StatusFailed || last.Failures != n || last.NextRetry == nil || last.NextRetry.Sub(last.LastReconciled) != want {
			t.Fatalf("after failure %d: state %s, failures %d, next retry %v after %v; want retry %v later", n, last.State, last.Failures, last.NextRetry, last.LastReconciled, want)
		}
	}
	// Between retries the bottle's operations are held, whatever triggers.
	x.w.Trigger("test")
	if r := x.waitPass(triggeredBy("test"), "triggered by the test"); r.Held != 1 || r.Ops != 0 {
		t.Fatalf("a pass during backoff: held %d, ops %d; want the bottle held", r.Held, r.Ops)
	}
	if creates := strings.Count(strings.Join(g.vm.writes(), ","), "create"); creates != 4 {
		t.Fatalf("%d guest creates, want one per failure (4)", creates)
	}
	fixed := time.Now()
	g.write("a.yaml", specFor("a"))
	x.waitPass(func(r PassReport) bool { return r.Failed == 0 && r.Ops > 0 }, "after the fix")
	sts, err := g.r.Status().All()
	mustDo(t, err)
	if st := sts[0]; st.State != StatusReady || st.Failures != 0 || st.NextRetry != nil {
		t.Fatalf("after the fix: %+v", st)
	}
	if !time.Now().Before(*last.NextRetry) && time.Since(fixed) > 2*time.Second {
		t.Fatalf("the fix waited for the backoff (%v)", time.Since(fixed))
	}
}

// TestWatchBackoffSurvivesRestart checks that the backoff lives in the
// state directory, not in one watcher's memory: a restarted watcher keeps a
// failing bottle's retry time, a spec changed while no watcher ran starts
// its failures over, and SIGHUP retries at once.
func TestWatchBackoffSurvivesRestart(t *testing.T) {
	g := newRig(t, "i1")
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4},
		g.net, g.bun, map[string]Driver{"smolvm": badImage{fakeDriver: g.vm, bad: "broken:"}}, testr.New(t))
	broken := func(img string) string { return strings.Replace(specFor("a"), "agent:1", img, 1) }
	g.write("a.yaml", broken("broken:1"))
	opts := WatchOptions{Backoff: Backoff{Base: time.Minute, Max: time.Hour}}
	status := func() Status {
		t.Helper()
		sts, err := g.r.Status().All()
		mustDo(t, err)
		if len(sts) != 1 {
			t.Fatalf("statuses = %+v", sts)
		}
		return sts[0]
	}

	x := startWatch(t, g, opts)
	x.waitPass(func(r PassReport) bool { return r.Failed == 1 }, "failing")
	x.stop()
	<-x.done
	x.done <- nil
	if st := status(); st.Failures != 1 || st.NextRetry == nil || st.Fingerprint == "" {
		t.Fatalf("after the first failure: %+v", st)
	}
	g.writes()

	// Restarted, same spec: the retry is a minute away, so nothing is tried.
	y := startWatch(t, g, opts)
	if r := y.waitPass(anyPass, "at restart"); r.Held != 1 || r.Ops != 0 || r.Failed != 0 {
		t.Fatalf("restarted watcher: held %d, ops %d, failed %d; want the bottle held", r.Held, r.Ops, r.Failed)
	}
	if w := g.writes(); slices.Contains(w, "create bottle-a") {
		t.Fatalf("the restarted watcher retried before the retry time: %q", w)
	}
	// SIGHUP asks for a pass now: it retries the bottle at once.
	y.w.Trigger(ReasonSignal)
	if r := y.waitPass(triggeredBy(ReasonSignal), "asked for"); r.Held != 0 || r.Failed != 1 {
		t.Fatalf("SIGHUP pass: held %d, failed %d; want the bottle retried", r.Held, r.Failed)
	}
	if st := status(); st.Failures != 2 {
		t.Fatalf("after the SIGHUP retry: failures %d, want 2", st.Failures)
	}
	y.stop()
	<-y.done
	y.done <- nil

	// The spec changes while no watcher runs (still broken): a new attempt
	// at once, and its failures start over.
	g.write("a.yaml", broken("broken:2"))
	z := startWatch(t, g, opts)
	if r := z.waitPass(anyPass, "after the edit"); r.Held != 0 || r.Failed != 1 {
		t.Fatalf("changed spec after restart: held %d, failed %d; want it tried", r.Held, r.Failed)
	}
	if st := status(); st.Failures != 1 || st.NextRetry.Sub(st.LastReconciled) != time.Minute {
		t.Fatalf("changed spec after restart: failures %d, next retry %v after %v; want 1 and a minute", st.Failures, st.NextRetry, st.LastReconciled)
	}
}

// events is an EventSource the test drives.
type events struct{ ch chan bottle.Event }

func (e *events) WatchEvents(ctx context.Context, _ string, notify func(bottle.Event)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.ch:
			notify(ev)
		}
	}
}

func TestWatchRuntimeEventHealsAndMetrics(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	ev := &events{ch: make(chan bottle.Event)}
	m := NewMetrics()
	x := startWatch(t, g, WatchOptions{Events: ev, Metrics: m})
	srv := httptest.NewServer(m.Handler(x.w.Ready))
	defer srv.Close()
	x.waitPass(anyPass, "at start")
	g.writes()
	g.bun.mutate("bottle-b-bundle", func(r *bottle.Resource) { r.Health = bottle.HealthUnhealthy })
	ev.ch <- bottle.Event{Bottle: "b", Reason: "docker health_status"}
	r := x.waitPass(triggeredBy("docker health_status"), "after the event")
	if r.Ops != 4 || len(r.Pass.sched.order) == 0 || r.Pass.sched.order[0] != "b" {
		t.Fatalf("event pass: %d ops (want 4), order %v (want b first)\n%s", r.Ops, r.Pass.sched.order, r.Pass.Plan)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		mustDo(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		mustDo(t, err)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d", code)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`bottle_drift_repairs_total 4`,
		`bottle_reconcile_total{result="success"} 3`,
		`bottle_bottles{state="Ready"} 2`,
		`bottle_reconcile_duration_seconds_count 2`,
		`bottle_queue_depth`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestWatchShutdownFinishesInFlight(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		wantErr bool // the operation in flight was cut short
	}{
		{"finishes", 5 * time.Second, false},
		{"cut short by the timeout", 50 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, "i1")
			gate := &gated{fakeDriver: g.vm, started: make(chan struct{}), release: make(chan struct{})}
			g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, Concurrency: 1},
				g.net, g.bun, map[string]Driver{"smolvm": gate}, testr.New(t))
			g.write("a.yaml", specFor("a"))
			g.write("b.yaml", specFor("b"))
			x := startWatch(t, g, WatchOptions{ShutdownTimeout: tt.timeout})
			<-gate.started // a's guest is being created; b waits for the one worker
			x.stop()
			time.AfterFunc(300*time.Millisecond, func() { close(gate.release) })
			select {
			case err := <-x.done:
				x.done <- err // for the cleanup
				mustDo(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return")
			}
			r := <-x.passes
			if got := r.Pass.Results["a"].Err != nil; got != tt.wantErr {
				t.Fatalf("in-flight create error = %v, want error: %v", r.Pass.Results["a"].Err, tt.wantErr)
			}
			if res := r.Pass.Results["b"]; res == nil || res.Err == nil || !strings.HasPrefix(res.Err.Error(), "not started") || len(res.Done) != 0 {
				t.Fatalf("bottle b started after the stop: %+v", res)
			}
		})
	}
}

// gated blocks guest creates until released (or the context ends).
type gated struct {
	*fakeDriver
	once             sync.Once
	started, release chan struct{}
}

func (g *gated) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	g.once.Do(func() { close(g.started) })
	select {
	case <-g.release:
	case <-ctx.Done():
		return bottle.Resource{}, context.Cause(ctx)
	}
	if err := ctx.Err(); err != nil {
		return bottle.Resource{}, context.Cause(ctx)
	}
	return g.fakeDriver.Create(ctx, w)
}

// TestWatchNewSpecsGoFirst checks that a new or changed spec is worked on
// before the resync backlog (drift found in other bottles).
func TestWatchNewSpecsGoFirst(t *testing.T) {
	g := newRig(t, "i1")
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 1},
		g.net, g.bun, map[string]Driver{"smolvm": g.vm}, testr.New(t))
	for _, n := range []string{"a", "b", "m"} {
		g.write(n+".yaml", specFor(n))
	}
	x := startWatch(t, g, WatchOptions{})
	x.waitPass(anyPass, "at start")
	seq := g.sequenced()
	for _, n := range []string{"a", "b"} {
		g.vm.mutate("bottle-"+n, func(r *bottle.Resource) { r.State = bottle.StateStopped })
	}
	g.write("m.yaml", specFor("m", "env: {A: b}"))
	g.write("z.yaml", specFor("z"))
	x.waitPass(func(r PassReport) bool { return r.Ops > 0 }, "applying")
	got := seq.take()
	want := []string{"smolvm: delete bottle-m", "smolvm: create bottle-m", "net: create bottle-z", "bundle: create bottle-z-bundle", "smolvm: create bottle-z", "smolvm: start bottle-a", "smolvm: start bottle-b"}
	if !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want the changed and new specs first: %q", got, want)
	}
}

// TestWatchIdle checks that an idle watcher does nothing: no observe, no
// pass, between the start and the resync.
func TestWatchIdle(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	x := startWatch(t, g, WatchOptions{})
	x.waitPass(anyPass, "at start")
	g.net.mu.Lock()
	before := len(g.net.calls)
	g.net.mu.Unlock()
	time.Sleep(time.Second)
	g.net.mu.Lock()
	after := len(g.net.calls)
	g.net.mu.Unlock()
	if after != before || len(x.passes) != 0 {
		t.Fatalf("an idle watcher made %d driver calls and %d passes in a second", after-before, len(x.passes))
	}
}

// A retry time recorded before the clock jumped back is not waited for: a
// restarted watcher waits at most what the backoff allows from now.
func TestWatchRetryAfterClockJumpedBack(t *testing.T) {
	g := newRig(t, "i1")
	opts := WatchOptions{Backoff: Backoff{Base: time.Minute, Max: time.Hour}}
	now := time.Now()
	tests := []struct {
		bottle   string
		at       time.Time
		failures int
		want     time.Time
	}{
		{"jumped", now.Add(365 * 24 * time.Hour), 3, now.Add(4 * time.Minute)},
		{"honest", now.Add(2 * time.Minute), 3, now.Add(2 * time.Minute)},
		{"capped", now.Add(3 * time.Hour), 20, now.Add(time.Hour)},
	}
	for _, tt := range tests {
		mustDo(t, g.r.Status().Write(Status{Bottle: tt.bottle, State: StatusFailed, Failures: tt.failures, NextRetry: &tt.at}))
	}
	w := g.r.Watcher(opts)
	w.now = func() time.Time { return now }
	w.seed(logr.Discard())
	for _, tt := range tests {
		if got := w.retry[tt.bottle].at; !got.Equal(tt.want) {
			t.Errorf("%s: retry %v after restart, want %v", tt.bottle, got.Sub(now), tt.want.Sub(now))
		}
	}
}

// preparer is a fake driver with a Prepare that reports the calls the
// driver had received by then.
type preparer struct {
	*fakeDriver
	prepared chan []string
}

func (p *preparer) Prepare(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prepared <- slices.Clone(p.calls)
	return errors.New("the image is elsewhere") // only logged
}

// A watcher prepares its drivers once, after the first pass with bottles to
// keep (which creates what it must without waiting for it); --once never
// does, and neither does a watcher with no bottles.
func TestWatchPreparesAfterFirstPass(t *testing.T) {
	g := newRig(t, "i1")
	p := &preparer{fakeDriver: g.bun, prepared: make(chan []string, 10)}
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4},
		g.net, p, map[string]Driver{"smolvm": g.vm}, testr.New(t))
	g.write("a.yaml", specFor("a"))
	g.pass()
	if len(p.prepared) != 0 {
		t.Fatal("--once (Reconcile) prepared a driver")
	}
	mustDo(t, os.Remove(filepath.Join(g.dir, "a.yaml")))
	g.pass()
	x := startWatch(t, g, WatchOptions{})
	x.waitPass(anyPass, "at start")
	x.w.Trigger("test")
	x.waitPass(triggeredBy("test"), "triggered by the test")
	if len(p.prepared) != 0 {
		t.Fatal("a watcher with no bottles prepared a driver")
	}
	g.write("b.yaml", specFor("b"))
	select {
	case calls := <-p.prepared:
		if !slices.Contains(calls, "create bottle-b-bundle") {
			t.Errorf("Prepare ran before the first pass with a bottle created it; the driver's calls by then: %q", calls)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not prepare its drivers")
	}
	g.write("c.yaml", specFor("c"))
	x.settle()
	if len(p.prepared) != 0 {
		t.Error("the watcher prepared its drivers again")
	}
}
