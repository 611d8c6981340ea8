package reconciler

import (
	"reflect"
	"slices"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

func TestMarkExited(t *testing.T) {
	running := func(id string) bottle.Resource {
		return bottle.Resource{Name: "r-" + id, ID: id, State: bottle.StateRunning, Health: bottle.HealthHealthy}
	}
	removed := bottle.Resource{Name: "r-c", ID: "c", State: bottle.StateStopped, Detail: "removing"}
	tests := []struct {
		name    string
		in      []bottle.Resource
		stopped map[string]string
		want    []bottle.Resource
	}{
		{"no events", []bottle.Resource{running("a")}, nil, []bottle.Resource{running("a")}},
		{"a die the list has not caught up with",
			[]bottle.Resource{running("a"), running("b")}, map[string]string{"a": "exited (137)"},
			[]bottle.Resource{{Name: "r-a", ID: "a", State: bottle.StateStopped, Detail: "exited (137)"}, running("b")}},
		{"a die with nothing more to say", []bottle.Resource{running("a")}, map[string]string{"a": ""},
			[]bottle.Resource{{Name: "r-a", ID: "a", State: bottle.StateStopped, Detail: "stopped"}}},
		{"what the list says already stands", []bottle.Resource{removed}, map[string]string{"c": "exited (137)"}, []bottle.Resource{removed}},
		{"a resource without an ID is never matched", []bottle.Resource{running("")}, map[string]string{"": "exited (1)"}, []bottle.Resource{running("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Clone(tt.in)
			markExited(got, tt.stopped)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestExitsRecordAndTake(t *testing.T) {
	var x exits
	stopped := func(id string) bottle.Event {
		return bottle.Event{Reason: "docker die", ID: id, State: bottle.StateStopped, Detail: "exited (1)"}
	}
	x.record(stopped("a"))
	x.record(stopped("b"))
	x.record(bottle.Event{ID: "b", State: bottle.StateRunning}) // started again
	x.record(bottle.Event{Reason: "docker destroy", ID: "c"})   // no run state: nothing to keep
	if got, want := x.take(""), map[string]string{"a": "exited (1)"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("take = %v, want %v", got, want)
	}
	if got := x.take(""); len(got) != 0 {
		t.Fatalf("a second take = %v; a pass takes the facts before it", got)
	}
}

// A pass scoped to one bottle takes that bottle's facts and leaves the
// others' for the passes that look at them.
func TestExitsTakeScoped(t *testing.T) {
	var x exits
	for _, b := range []string{"a", "b"} {
		x.record(bottle.Event{Bottle: b, Reason: "docker die", ID: "id-" + b, State: bottle.StateStopped, Detail: "exited (137)"})
	}
	if got, want := x.take("b"), map[string]string{"id-b": "exited (137)"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("take(b) = %v, want %v", got, want)
	}
	if got := x.take("b"); len(got) != 0 {
		t.Fatalf("a second take(b) = %v, want nothing", got)
	}
	if got, want := x.take(""), map[string]string{"id-a": "exited (137)"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("take() after take(b) = %v, want a's fact kept", got)
	}
}

// Docker sends a container's die before its list says so: it lists a dying
// bundle as running while it releases the bundle's network endpoints. The
// pass that the die starts counts the bundle stopped and replaces it, where
// it would plan nothing and leave the heal to a pass after it. A start of
// the same container after its die cancels that.
func TestWatchDieOutrunsTheList(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	ev := &events{ch: make(chan bottle.Event)}
	x := startWatch(t, g, WatchOptions{Events: ev})
	x.waitPass(anyPass, "at start")
	g.writes()
	const id = "id-bottle-b-bundle" // what the fake lists, still running
	die := bottle.Event{Bottle: "b", Reason: "docker die", ID: id, State: bottle.StateStopped, Detail: "exited (137)"}

	// A die that names no container tells nothing the list does not.
	ev.ch <- bottle.Event{Bottle: "b", Reason: "docker die"}
	if r := x.waitPass(triggeredBy("docker die"), "after a die without an ID"); r.Ops != 0 {
		t.Fatalf("a die without an ID: %d ops, want none\n%s", r.Ops, r.Pass.Plan)
	}
	// Started again before the pass: it runs, and nothing is replaced.
	ev.ch <- die
	ev.ch <- bottle.Event{Bottle: "b", ID: id, State: bottle.StateRunning}
	if r := x.waitPass(triggeredBy("docker die"), "after a die and a start"); r.Ops != 0 {
		t.Fatalf("a die, then a start of the same container: %d ops, want none\n%s", r.Ops, r.Pass.Plan)
	}

	ev.ch <- die
	r := x.waitPass(triggeredBy("docker die"), "after the die")
	want := []string{"delete bottle-b-bundle", "create bottle-b-bundle"}
	if got := g.bun.writes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the pass on the die: bundle writes %q, want %q\n%s", got, want, r.Pass.Plan)
	}
	if !slices.ContainsFunc(r.Pass.Plan.Ops, func(op Op) bool { return op.Action == ActionDelete && op.Cause == "bundle exited (137)" }) {
		t.Errorf("the plan does not give the die's exit as the cause:\n%s", r.Pass.Plan)
	}
	// The fake gives the new bundle the old one's ID, so a fact that
	// outlived its pass would replace it again.
	ev.ch <- bottle.Event{Bottle: "b", Reason: "docker destroy"}
	if r := x.waitPass(triggeredBy("docker destroy"), "after the destroy"); r.Ops != 0 {
		t.Fatalf("the pass after: %d ops; a die counts for the one pass after it\n%s", r.Ops, r.Pass.Plan)
	}
}
