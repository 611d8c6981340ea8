package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWatchHolds checks that a plan notes what a watcher would hold back of
// it: a removed spec's teardown (tentative), a bottle backing off, and a
// Blocked one; and nothing for a bottle whose spec changed since.
func TestWatchHolds(t *testing.T) {
	g := newRig(t, "i1")
	for _, n := range []string{"gone", "backoff", "blocked", "edited", "ok"} {
		g.write(n+".yaml", specFor(n))
	}
	g.pass()
	now := time.Now()
	later := now.Add(time.Hour)
	sts, err := g.r.Status().All()
	mustDo(t, err)
	for _, st := range sts {
		switch st.Bottle {
		case "backoff", "edited":
			st.State, st.Failures, st.NextRetry = StatusFailed, 3, &later
		case "blocked":
			st.State = StatusBlocked
		default:
			continue
		}
		mustDo(t, g.r.Status().Write(st))
	}
	// Each bottle but ok has something to do: its guest is gone.
	for _, n := range []string{"backoff", "blocked", "edited"} {
		delete(g.vm.items, "bottle-"+n)
	}
	g.write("edited.yaml", specFor("edited", "env: {MODE: fast}"))
	mustDo(t, os.Remove(filepath.Join(g.dir, "gone.yaml")))

	p, err := g.r.Plan(context.Background())
	mustDo(t, err)
	var got []string
	for _, n := range p.WatchHolds(now) {
		got = append(got, n.Bottle+" "+string(n.Kind))
	}
	want := []string{"backoff backoff", "blocked unchanged", "gone tentative"}
	if !slices.Equal(got, want) {
		t.Fatalf("watch holds = %q, want %q\n%s", got, want, p.Plan)
	}
	if holds := p.WatchHolds(later.Add(time.Second)); len(holds) != 2 {
		t.Fatalf("after the retry time: %v; want the backoff no longer held", holds)
	}
}
