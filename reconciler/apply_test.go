package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"
)

// inFlight counts operations running at once, in all and per bottle.
type inFlight struct {
	mu                sync.Mutex
	now, max          int
	bottle            map[string]int
	maxBottle         int
	overlappingBottle string
}

func (f *inFlight) enter(bottle string) {
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	f.bottle[bottle]++
	if f.bottle[bottle] > 1 {
		f.overlappingBottle = bottle
	}
	f.maxBottle = max(f.maxBottle, f.bottle[bottle])
	f.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // long enough for others to overlap
}

func (f *inFlight) leave(bottle string) {
	f.mu.Lock()
	f.now--
	f.bottle[bottle]--
	f.mu.Unlock()
}

// slow is a fake driver whose writes take a while and are counted.
type slow struct {
	*fakeDriver
	c *inFlight
}

func (s slow) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	s.c.enter(w.Bottle)
	defer s.c.leave(w.Bottle)
	return s.fakeDriver.Create(ctx, w)
}

func (s slow) Delete(ctx context.Context, r bottle.Resource) error {
	s.c.enter(r.Bottle)
	defer s.c.leave(r.Bottle)
	return s.fakeDriver.Delete(ctx, r)
}

func TestExecutorBoundsConcurrencyAndSerialisesEachBottle(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("concurrency %d", n), func(t *testing.T) {
			g := newRig(t, "i1")
			c := &inFlight{bottle: map[string]int{}}
			g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 10, Concurrency: n},
				slow{g.net, c}, slow{g.bun, c}, map[string]Driver{"smolvm": slow{g.vm, c}}, testr.New(t))
			for i := range 8 {
				g.write(fmt.Sprintf("b%d.yaml", i), specFor(fmt.Sprintf("b%d", i)))
			}
			if p := g.pass(); !p.Converged() || len(g.writes()) != 24 {
				t.Fatalf("not converged: %v", p.Failures())
			}
			if c.max != n {
				t.Errorf("at most %d operations ran at once, want exactly the bound %d", c.max, n)
			}
			if c.maxBottle != 1 {
				t.Errorf("bottle %s had two operations at once", c.overlappingBottle)
			}
		})
	}
}

func TestDefaultConcurrencyIsFour(t *testing.T) {
	if r := New(Config{}, newFake("net", bottle.RoleNetwork), newFake("bundle", bottle.RoleBundle), nil, testr.New(t)); r.cfg.Concurrency != 4 {
		t.Fatalf("default concurrency = %d, want 4", r.cfg.Concurrency)
	}
}

// TestOneLogLinePerOperation checks the operation log: one line per
// operation with bottle, resource, action and cause, and no env value at
// any verbosity.
func TestOneLogLinePerOperation(t *testing.T) {
	g := newRig(t, "i1")
	var mu sync.Mutex
	var lines []string
	log := funcr.NewJSON(func(obj string) {
		mu.Lock()
		lines = append(lines, obj)
		mu.Unlock()
	}, funcr.Options{Verbosity: 10})
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5}, g.net, g.bun, map[string]Driver{"smolvm": g.vm}, log)
	const secret = "s3cr3t-value-1234"
	g.write("a.yaml", specFor("a", "env: {TOKEN: "+secret+"}"))
	g.write("b.yaml", specFor("b"))
	g.vm.failOn["create bottle-b"] = errors.New("boom")
	p := g.pass()

	type line struct {
		Msg, Bottle, Resource, Action, Cause string
	}
	var got []line
	for _, l := range lines {
		if strings.Contains(l, secret) {
			t.Errorf("a log line holds an env value: %s", l)
		}
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if x.Action != "" {
			got = append(got, x)
		}
	}
	var want []line
	for _, op := range p.Plan.Ops {
		msg := "operation done"
		if op.Bottle == "b" && op.Role == bottle.RoleGuest {
			msg = "operation failed"
		}
		want = append(want, line{msg, op.Bottle, op.Name, string(op.Action), op.Cause})
	}
	sortLines := func(ls []line) {
		slices.SortFunc(ls, func(a, b line) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	}
	sortLines(got)
	sortLines(want)
	if !slices.Equal(got, want) {
		t.Fatalf("operation lines:\n%v\nwant one per operation:\n%v", got, want)
	}
}

// meeting is a fake driver whose deletes each wait, up to a while, for
// every other delete of the meeting to have begun: they all finish only if
// they run at once.
type meeting struct {
	*fakeDriver
	arrived *sync.WaitGroup
	fail    error
}

func (m meeting) Delete(ctx context.Context, r bottle.Resource) error {
	m.arrived.Done()
	done := make(chan struct{})
	go func() { m.arrived.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return errors.New("the op it should run beside never began")
	}
	if m.fail != nil {
		return m.fail
	}
	return m.fakeDriver.Delete(ctx, r)
}

// An op with a later Through runs beside the steps up to it; the step after
// it waits for it and does not start when it failed; nothing of it outlives
// Apply.
func TestSpanningOpRunsBesideLaterSteps(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failA    error
		wantDone []string // kinds, in the order they ended
	}{
		{name: "all succeed", wantDone: []string{"b", "a", "c"}},
		{name: "the spanning op fails", failA: errors.New("refused"), wantDone: []string{"b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var arrived sync.WaitGroup
			arrived.Add(2)
			a := meeting{newFake("a", bottle.RoleGuest), &arrived, tt.failA}
			drivers := map[string]Driver{"a": a, "b": meeting{newFake("b", bottle.RoleBundle), &arrived, nil}, "c": newFake("c", bottle.RoleNetwork)}
			ops := deletes(1, 2, 3)
			ops[0].Through = 2 // a runs beside b's step; c waits for both
			res, done := applyDeletes(t, &Executor{Drivers: drivers, Concurrency: 1, Log: testr.New(t)}, ops)
			if !slices.Equal(done, tt.wantDone) {
				t.Errorf("done %q, want %q (err %v)", done, tt.wantDone, res.Err)
			}
			if tt.failA != nil && (res.Failed == nil || res.Failed.Kind != "a" || !errors.Is(res.Err, tt.failA)) {
				t.Errorf("failed op %+v (%v), want a's", res.Failed, res.Err)
			}
			if tt.failA == nil && res.Err != nil {
				t.Errorf("err %v", res.Err)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if n := len(a.calls); (tt.failA == nil) != (n == 1) {
				t.Errorf("a's driver recorded %d calls by the time Apply returned", n)
			}
		})
	}
}

// stopper is a driver whose Delete closes the executor's Stop channel, as a
// graceful shutdown would while the op runs.
type stopper struct {
	*fakeDriver
	stop chan struct{}
}

func (s stopper) Delete(ctx context.Context, r bottle.Resource) error {
	close(s.stop)
	return s.fakeDriver.Delete(ctx, r)
}

// A shutdown while a spanning op runs starts no further step, and the
// spanning op is still waited for and recorded before Apply returns.
func TestSpanningOpAtShutdown(t *testing.T) {
	stop := make(chan struct{})
	a, c := slow{newFake("a", bottle.RoleGuest), &inFlight{bottle: map[string]int{}}}, newFake("c", bottle.RoleNetwork)
	drivers := map[string]Driver{"a": a, "b": stopper{newFake("b", bottle.RoleBundle), stop}, "c": c}
	ops := deletes(1, 2, 3)
	ops[0].Through = 3 // a may run on beside b and c
	e := &Executor{Drivers: drivers, Concurrency: 1, Log: testr.New(t), Stop: stop}
	res, done := applyDeletes(t, e, ops)
	if !slices.Equal(done, []string{"b", "a"}) {
		t.Errorf("done %q, want b, then the spanning a waited for", done)
	}
	if !errors.Is(res.Err, errStopping) || res.Failed == nil || res.Failed.Kind != "c" {
		t.Errorf("failed %+v (%v), want c not started for the shutdown", res.Failed, res.Err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) != 1 || len(c.calls) != 0 {
		t.Errorf("calls when Apply returned: a %q, c %q; want a's delete done and none of c", a.calls, c.calls)
	}
}

// deletes is a plan of bottle x: a delete of x-a, x-b and x-c (by drivers
// of kinds a, b and c), at the given steps.
func deletes(steps ...int) []Op {
	var ops []Op
	for i, k := range []string{"a", "b", "c"} {
		r := bottle.Resource{Bottle: "x", Kind: k, Name: "x-" + k}
		ops = append(ops, Op{Bottle: "x", Step: steps[i], Action: ActionDelete, Kind: k, Name: r.Name, Target: &r})
	}
	return ops
}

// applyDeletes applies ops with e and returns x's result and the kinds of
// its ops done, in the order they ended.
func applyDeletes(t *testing.T, e *Executor, ops []Op) (*BottleResult, []string) {
	res := e.Apply(context.Background(), Plan{Ops: ops})["x"]
	var done []string
	for _, op := range res.Done {
		done = append(done, op.Kind)
	}
	return res, done
}
