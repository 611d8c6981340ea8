package reconciler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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

func (s slow) Create(ctx context.Context, w Want) (Resource, error) {
	s.c.enter(w.Bottle)
	defer s.c.leave(w.Bottle)
	return s.fakeDriver.Create(ctx, w)
}

func (s slow) Delete(ctx context.Context, r Resource) error {
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
	if r := New(Config{}, newFake("net", RoleNetwork), newFake("bundle", RoleBundle), nil, testr.New(t)); r.cfg.Concurrency != 4 {
		t.Fatalf("default concurrency = %d, want 4", r.cfg.Concurrency)
	}
}
