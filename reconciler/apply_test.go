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
