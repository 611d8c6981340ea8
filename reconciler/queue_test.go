package reconciler

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

func TestQueueDebounce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name   string
		fill   func(q *queue)
		now    int // ms
		due    bool
		wait   time.Duration
		reason []string
	}{
		{"empty", func(q *queue) {}, 0, false, -1, nil},
		{"hint waits for quiet", func(q *queue) { q.Hint("", "file", at(0)) }, 50, false, 50 * time.Millisecond, nil},
		{"each hint restarts the quiet period", func(q *queue) { q.Hint("", "file", at(0)); q.Hint("a", "docker die", at(80)) }, 150, false, 30 * time.Millisecond, nil},
		{"quiet reached", func(q *queue) { q.Hint("", "file", at(0)); q.Hint("a", "docker die", at(80)) }, 180, true, 0, []string{"docker die", "file"}},
		{"a burst is cut at 10 debounces", func(q *queue) {
			for ms := 0; ms <= 1000; ms += 50 {
				q.Hint("", "file", at(ms))
			}
		}, 1000, true, 0, []string{"file"}},
		{"a scheduled pass waits out a burst", func(q *queue) { q.At("resync", at(0)); q.Hint("", "file", at(0)) }, 50, false, 50 * time.Millisecond, nil},
		{"scheduled passes collapse", func(q *queue) { q.At("resync", at(0)); q.At("retry", at(10)) }, 10, true, 0, []string{"resync", "retry"}},
		{"a cancelled schedule is gone", func(q *queue) { q.At("retry", at(10)); q.At("retry", time.Time{}) }, 10, false, -1, nil},
		{"a runtime event waits only for its burst", func(q *queue) { q.HintRuntime("a", "docker die", at(0)) }, 10, true, 0, []string{"docker die"}},
		{"a runtime burst collapses", func(q *queue) { q.HintRuntime("a", "docker die", at(0)); q.HintRuntime("a", "docker destroy", at(6)) }, 10, false, 6 * time.Millisecond, nil},
		{"a runtime event never cuts a file burst short", func(q *queue) { q.Hint("", "file", at(0)); q.HintRuntime("a", "docker die", at(10)) }, 60, false, 40 * time.Millisecond, nil},
		{"a file event after a runtime one waits the debounce", func(q *queue) { q.HintRuntime("a", "docker die", at(0)); q.Hint("", "file", at(20)) }, 60, false, 60 * time.Millisecond, nil},
		{"after a pass, a runtime event starts afresh", func(q *queue) {
			q.Hint("", "file", at(0))
			q.Next(at(100))
			q.HintRuntime("a", "docker die", at(110))
		}, 160, true, 0, []string{"docker die"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(100 * time.Millisecond)
			tt.fill(q)
			tr, due, wait := q.Next(at(tt.now))
			if due != tt.due || wait != tt.wait || !slices.Equal(tr.Reasons, tt.reason) {
				t.Fatalf("Next = %v, %v, %v; want %v, %v, %v", tr.Reasons, due, wait, tt.reason, tt.due, tt.wait)
			}
			if due {
				if _, again, _ := q.Next(at(tt.now)); again {
					t.Fatal("a consumed trigger came due again")
				}
			}
		})
	}
}

func TestExecutorStartsInOrder(t *testing.T) {
	f := newFake("net", bottle.RoleNetwork)
	var plan Plan
	for _, b := range []string{"a", "b", "c", "d"} {
		w := &bottle.Want{Bottle: b, Role: bottle.RoleNetwork, Name: "bottle-" + b, Labels: bottle.OwnerLabels("i1", b, bottle.RoleNetwork, "h")}
		plan.Ops = append(plan.Ops, Op{Bottle: b, Step: 1, Action: ActionCreate, Role: bottle.RoleNetwork, Kind: "net", Name: w.Name, Want: w})
	}
	ex := &Executor{Drivers: map[string]Driver{"net": f}, Concurrency: 1, Order: []string{"d", "b"}}
	ex.Apply(context.Background(), plan)
	if got := strings.Join(f.writes(), ","); got != "create bottle-d,create bottle-b,create bottle-a,create bottle-c" {
		t.Fatalf("order = %s", got)
	}
}
