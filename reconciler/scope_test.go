package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

func TestTriggerScope(t *testing.T) {
	tests := []struct {
		name string
		t    trigger
		want string
	}{
		{"a runtime event about one bottle", trigger{Reasons: []string{"docker die"}, Bottles: []string{"b"}}, "b"},
		{"several events about one bottle", trigger{Reasons: []string{"docker destroy", "docker die"}, Bottles: []string{"b"}}, "b"},
		{"events about two bottles", trigger{Reasons: []string{"docker die"}, Bottles: []string{"a", "b"}}, ""},
		{"a runtime event that names no bottle", trigger{Reasons: []string{"docker reconnect"}, Bottles: []string{"b"}, Unnamed: true}, ""},
		{"a spec file changed too", trigger{Reasons: []string{"docker die", "file"}, Bottles: []string{"b"}, Files: true}, ""},
		{"a resync came due too", trigger{Reasons: []string{"docker die", "resync"}, Bottles: []string{"b"}, Scheduled: []string{"resync"}}, ""},
		{"a retry came due too", trigger{Reasons: []string{"docker die", reasonRetry}, Bottles: []string{"b"}, Scheduled: []string{reasonRetry}}, ""},
		{"a signal", trigger{Reasons: []string{ReasonSignal}, Scheduled: []string{ReasonSignal}}, ""},
		{"a file alone", trigger{Reasons: []string{"file"}, Files: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.scope(); got != tt.want {
				t.Errorf("scope = %q, want %q", got, tt.want)
			}
		})
	}
}

// A queue says which hints came from files, whatever else came with them.
func TestQueueTellsFilesFromRuntime(t *testing.T) {
	q := newQueue(time.Millisecond)
	now := time.Now()
	q.HintRuntime("b", "docker die", now)
	tr, due, _ := q.Next(now.Add(time.Second))
	if !due || tr.scope() != "b" {
		t.Fatalf("a runtime hint alone: due %v, trigger %+v, want a pass scoped to b", due, tr)
	}
	q.HintRuntime("b", "docker die", now)
	q.Hint("", "file", now)
	if tr, _, _ := q.Next(now.Add(time.Second)); !tr.Files || tr.scope() != "" {
		t.Fatalf("a runtime hint and a file hint: trigger %+v, want a pass over every bottle", tr)
	}
	q.HintRuntime("b", "docker die", now)
	if tr, _, _ := q.Next(now.Add(time.Second)); tr.Files {
		t.Fatalf("the next pass still counts a file hint that was consumed: %+v", tr)
	}
}

// convergedAB is a rig with bottles a and b made, and its calls forgotten.
func convergedAB(t *testing.T) *rig {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	g.pass()
	g.writes()
	for _, f := range []*fakeDriver{g.net, g.bun, g.vm} {
		f.observed()
	}
	return g
}

// A pass scoped to one bottle observes it alone, heals it alone, and leaves
// the other bottles, and everything recorded of them, as it found them: a
// pass over every bottle heals those.
func TestScopedPassLooksAtItsBottleAlone(t *testing.T) {
	g := convergedAB(t)
	passFile := filepath.Join(g.state, "pass.json")
	before, err := os.ReadFile(passFile)
	mustDo(t, err)
	statusA, err := os.ReadFile(filepath.Join(g.state, "status", "a.json"))
	mustDo(t, err)

	// Both bundles go behind the reconciler's back.
	mustDo(t, g.bun.Delete(context.Background(), bottle.Resource{Name: "bottle-a-bundle"}),
		g.bun.Delete(context.Background(), bottle.Resource{Name: "bottle-b-bundle"}))
	g.writes()
	ctx := context.Background()
	time.Sleep(10 * time.Millisecond) // a pass time that moved would show
	p, err := g.r.plan(ctx, nil, "b")
	mustDo(t, err)
	if p.Scope != "b" {
		t.Fatalf("Scope = %q, want b", p.Scope)
	}
	if got := p.Plan.Bottles(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("a pass scoped to b plans for %v\n%s", got, p.Plan)
	}
	_, err = g.r.Apply(ctx, p)
	mustDo(t, err)
	want := []string{"create bottle-b-bundle", "stop bottle-b", "start bottle-b"}
	got := g.writes()
	slices.Sort(got)
	slices.Sort(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the scoped pass wrote %q, want %q", got, want)
	}
	for _, f := range []*fakeDriver{g.net, g.bun, g.vm} {
		if got := f.observed(); !reflect.DeepEqual(got, []string{"b"}) {
			t.Errorf("%s observed with scopes %q, want one observation of b", f.kind, got)
		}
	}
	if len(p.Statuses) != 2 {
		t.Errorf("the pass's statuses: %d, want both bottles' (a as last recorded)", len(p.Statuses))
	}
	after, err := os.ReadFile(passFile)
	mustDo(t, err)
	if string(after) != string(before) {
		t.Errorf("a scoped pass rewrote pass.json (%s -> %s); only a pass over every bottle may", before, after)
	}
	nowA, err := os.ReadFile(filepath.Join(g.state, "status", "a.json"))
	mustDo(t, err)
	if string(nowA) != string(statusA) {
		t.Errorf("a scoped pass for b rewrote a's status:\n%s\nwas\n%s", nowA, statusA)
	}

	// The pass over every bottle heals a.
	g.pass()
	if got := g.writes(); !slices.Contains(got, "create bottle-a-bundle") {
		t.Fatalf("the full pass after: %q, want a's bundle made", got)
	}
}

// A bottle with no spec is torn down only by a pass over every bottle, under
// its caps and quiet period: a scoped pass for it plans every bottle.
func TestScopedPassWithoutSpecPlansEveryBottle(t *testing.T) {
	g := convergedAB(t)
	mustDo(t, os.Remove(filepath.Join(g.dir, "b.yaml")))
	p, err := g.r.plan(context.Background(), nil, "b")
	mustDo(t, err)
	if p.Scope != "" {
		t.Fatalf("Scope = %q, want a pass over every bottle", p.Scope)
	}
	if got := g.bun.observed(); got[len(got)-1] != "" {
		t.Fatalf("the bundle driver's observations: %q, want the last over every bottle", got)
	}
	if got := p.Plan.Bottles(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("plan for %v, want b's teardown\n%s", got, p.Plan)
	}
}

// A watcher scopes a pass that runtime events about one bottle started, and
// a scoped pass leaves a teardown that waits for its quiet period alone.
func TestWatchScopesRuntimeEvents(t *testing.T) {
	g := newRig(t, "i1")
	for _, n := range []string{"a", "b", "c"} {
		g.write(n+".yaml", specFor(n))
	}
	ev := &events{ch: make(chan bottle.Event)}
	// A long quiet period, so the die's pass (50 ms) runs well inside it.
	x := startWatch(t, g, WatchOptions{Events: ev, Debounce: 500 * time.Millisecond})
	x.waitPass(anyPass, "at start")
	g.writes()

	mustDo(t, os.Remove(filepath.Join(g.dir, "a.yaml")))
	if r := x.waitPass(triggeredBy("file"), "after a's spec went"); r.Pass.Scope != "" || r.Held != 1 {
		t.Fatalf("the file pass: scope %q, held %d; want a pass over every bottle holding a's teardown", r.Pass.Scope, r.Held)
	}
	const id = "id-bottle-b-bundle"
	ev.ch <- bottle.Event{Bottle: "b", Reason: "docker die", ID: id, State: bottle.StateStopped, Detail: "exited (137)"}
	r := x.waitPass(triggeredBy("docker die"), "after b's die")
	if r.Pass.Scope != "b" || r.Ops == 0 {
		t.Fatalf("the die's pass: scope %q, %d ops; want b healed by a pass scoped to it\n%s", r.Pass.Scope, r.Ops, r.Pass.Plan)
	}
	if got := g.bun.writes(); !reflect.DeepEqual(got, []string{"delete bottle-b-bundle", "create bottle-b-bundle"}) {
		t.Fatalf("the die's pass: bundle writes %q", got)
	}
	r = x.waitPass(triggeredBy(reasonConfirm), "confirming a's removal after the scoped pass")
	if got := g.net.writes(); !slices.Contains(got, "delete bottle-a") {
		t.Fatalf("the confirming pass: network writes %q, want a torn down\n%s", got, r.Pass.Plan)
	}

	// Events about two bottles in one quiet period: a pass over every one.
	g.writes()
	g.vm.mutate("bottle-b", func(r *bottle.Resource) { r.State = bottle.StateStopped })
	g.vm.mutate("bottle-c", func(r *bottle.Resource) { r.State = bottle.StateStopped })
	ev.ch <- bottle.Event{Bottle: "b", Reason: "smolvm stop"}
	ev.ch <- bottle.Event{Bottle: "c", Reason: "smolvm stop"}
	if r := x.waitPass(triggeredBy("smolvm stop"), "after two bottles' events"); r.Pass.Scope != "" {
		t.Fatalf("events about b and c: scope %q, want every bottle", r.Pass.Scope)
	}
}

// Scoped passes leave the resync where it is: a bottle whose bundle dies
// every few hundred milliseconds must not put off, for ever, the pass over
// every bottle, which heals what no event tells of.
func TestWatchScopedPassesKeepTheResync(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	ev := &events{ch: make(chan bottle.Event)}
	x := startWatch(t, g, WatchOptions{Events: ev, Resync: 500 * time.Millisecond})
	x.waitPass(anyPass, "at start")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			select {
			case ev.ch <- bottle.Event{Bottle: "b", Reason: "docker die"}:
			case <-stop:
				return
			}
		}
	}()
	scoped := 0
	r := x.waitPass(func(r PassReport) bool {
		if r.Pass != nil && r.Pass.Scope == "b" {
			scoped++
		}
		return slices.Contains(r.Trigger, "resync")
	}, "of the resync while b's events kept coming")
	if scoped == 0 {
		t.Fatalf("no scoped pass ran before the resync (trigger %v): the test did not test", r.Trigger)
	}
}
