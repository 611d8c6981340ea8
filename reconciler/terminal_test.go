package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/go-logr/logr/testr"
)

// Errors as Docker's client returns them: classed by a method, not by a
// sentinel.
type (
	dockerConflict    struct{}
	dockerInvalid     struct{}
	dockerForbidden   struct{}
	dockerUnavailable struct{}
	dockerNotFound    struct{}
)

func (dockerConflict) Error() string    { return "Conflict. The container name is already in use" }
func (dockerConflict) Conflict()        {}
func (dockerInvalid) Error() string     { return "invalid reference format" }
func (dockerInvalid) InvalidParameter() {}
func (dockerForbidden) Error() string   { return "Address already in use" }
func (dockerForbidden) Forbidden()      {}
func (dockerUnavailable) Error() string { return "Cannot connect to the Docker daemon" }
func (dockerUnavailable) Unavailable()  {}
func (dockerNotFound) Error() string    { return "No such image" }
func (dockerNotFound) NotFound()        {}

func wrapped(err error) error {
	return fmt.Errorf("dockernet: create container %q: %w", "bottle-a-bundle", err)
}

var terminalCases = []struct {
	name     string
	err      error
	terminal bool
}{
	{"foreign container holds the name", wrapped(cerrdefs.ErrConflict), true},
	{"docker's conflict", wrapped(dockerConflict{}), true},
	{"invalid argument", wrapped(cerrdefs.ErrInvalidArgument), true},
	{"docker's invalid parameter", wrapped(dockerInvalid{}), true},
	{"envFromHost variable not set", fmt.Errorf("host environment variable %q named in spec.envFromHost is not set: %w", "TOKEN", cerrdefs.ErrFailedPrecondition), true},
	{"address taken (forbidden)", wrapped(dockerForbidden{}), true},
	{"daemon unavailable", wrapped(cerrdefs.ErrUnavailable), false},
	{"docker's unavailable", wrapped(dockerUnavailable{}), false},
	{"timeout", wrapped(context.DeadlineExceeded), false},
	{"cancelled", wrapped(context.Canceled), false},
	{"shutting down", fmt.Errorf("not started: %w", errStopping), false},
	{"not found", wrapped(dockerNotFound{}), false},
	{"pool exhausted", wrapped(cerrdefs.ErrResourceExhausted), false},
	{"no class", errors.New("boom"), false},
	{"conflict joined with an outage", errors.Join(wrapped(cerrdefs.ErrConflict), wrapped(cerrdefs.ErrUnavailable)), false},
	{"a conflict met while stopping", fmt.Errorf("%w: %w", errStopping, cerrdefs.ErrConflict), false},
	{"nil", nil, false},
}

func TestTerminal(t *testing.T) {
	for _, tt := range terminalCases {
		if got := Terminal(tt.err); got != tt.terminal {
			t.Errorf("%s: Terminal(%v) = %v, want %v", tt.name, tt.err, got, tt.terminal)
		}
	}
}

// TestTerminalStatus checks what a pass records for a driver failing with
// each class: Blocked, its failures not counted, for a terminal error;
// Failed and one more failure otherwise.
func TestTerminalStatus(t *testing.T) {
	for _, tt := range terminalCases {
		if tt.err == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, "i1")
			g.write("a.yaml", specFor("a"))
			g.bun.failOn["create bottle-a-bundle"] = tt.err
			g.pass()
			sts, err := g.r.Status().All()
			mustDo(t, err)
			st := sts[0]
			want, failures := StatusFailed, 1
			if tt.terminal {
				want, failures = StatusBlocked, 0
			}
			if st.State != want || st.Failures != failures || st.LastError != tt.err.Error() || st.Reason != "bundle missing" {
				t.Fatalf("status = %+v; want %s with %d failure(s), the error and the cause", st, want, failures)
			}
		})
	}
}

// TestConflictNoteIsBlocked: another instance owning a name the bottle needs
// is Blocked, never backed off.
func TestConflictNoteIsBlocked(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.pass()
	g.r = g.reconciler("i2") // the same bottle under another instance
	for range 2 {
		g.pass()
	}
	sts, err := g.r.Status().All()
	mustDo(t, err)
	if st := sts[0]; st.State != StatusBlocked || st.Failures != 0 || st.NextRetry != nil || !strings.Contains(st.LastError, `belongs to reconciler instance "i1"`) {
		t.Fatalf("status = %+v; want Blocked naming the owner", st)
	}
}

// TestWatchTerminalWaitsForChange checks that a watcher never backs off a
// Blocked bottle: it is held while nothing it depends on changes (another
// spec's file event; a runtime event about another bottle, whose pass looks
// at that bottle alone), retried when a
// runtime event names it, and retried at once when its spec changes.
func TestWatchTerminalWaitsForChange(t *testing.T) {
	g := newRig(t, "i1")
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4},
		g.net, g.bun, map[string]Driver{"smolvm": badImage{fakeDriver: g.vm, bad: "needs-env:", err: fmt.Errorf(
			"host environment variable %q named in spec.envFromHost is not set; set it in the reconciler's environment and restart it, or remove it from spec.envFromHost: %w",
			"TOKEN", cerrdefs.ErrFailedPrecondition)}}, testr.New(t))
	g.write("a.yaml", strings.Replace(specFor("a"), "agent:1", "needs-env:1", 1))
	ev := &events{ch: make(chan bottle.Event)}
	x := startWatch(t, g, WatchOptions{Events: ev, Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}})
	creates := func() int { return strings.Count(strings.Join(g.vm.writes(), ","), "create bottle-a") }
	status := func() Status {
		t.Helper()
		sts, err := g.r.Status().All()
		mustDo(t, err)
		return sts[0]
	}

	x.waitPass(func(r PassReport) bool { return r.Failed == 1 }, "failing at start")
	if st := status(); st.State != StatusBlocked || st.NextRetry != nil || st.Failures != 0 || !strings.Contains(st.LastError, "envFromHost") {
		t.Fatalf("after a terminal error: %+v; want Blocked, no retry time, no failure counted", st)
	}
	if n := creates(); n != 1 {
		t.Fatalf("%d guest creates at start, want 1", n)
	}

	g.write("b.yaml", specFor("b"))
	if r := x.waitPass(triggeredBy("file"), "after another spec was added"); r.Held != 1 || r.Failed != 0 {
		t.Fatalf("another spec's file event: held %d, failed %d; want a held\n%s", r.Held, r.Failed, r.Pass.Plan)
	}
	// A pass on an event about b alone looks at b alone: a is not retried.
	ev.ch <- bottle.Event{Bottle: "b", Reason: "docker die"}
	if r := x.waitPass(triggeredBy("docker die"), "after an event about b"); r.Pass.Scope != "b" || r.Failed != 0 {
		t.Fatalf("a runtime event about b: scope %q, failed %d; want a pass over b alone", r.Pass.Scope, r.Failed)
	}
	if n := creates(); n != 0 {
		t.Fatalf("the Blocked bottle was retried %d time(s) though nothing it depends on changed", n)
	}

	ev.ch <- bottle.Event{Bottle: "a", Reason: "docker destroy"}
	if r := x.waitPass(triggeredBy("docker destroy"), "after an event about a"); r.Held != 0 || r.Failed != 1 {
		t.Fatalf("a runtime event about a: held %d, failed %d; want a retried", r.Held, r.Failed)
	}
	if st := status(); st.State != StatusBlocked || st.Failures != 0 || creates() != 1 {
		t.Fatalf("after a retry: %+v; want still Blocked, no failure counted, one create", st)
	}

	g.write("a.yaml", specFor("a"))
	if r := x.waitPass(triggeredBy("file"), "after the fix"); r.Held != 0 || r.Failed != 0 || r.Ops == 0 {
		t.Fatalf("the fixed spec: held %d, failed %d, ops %d; want it applied at once", r.Held, r.Failed, r.Ops)
	}
	if st := status(); st.State != StatusReady {
		t.Fatalf("after the fix: %+v", st)
	}
}
