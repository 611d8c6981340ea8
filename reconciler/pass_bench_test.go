package reconciler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/go-logr/logr"
)

// BenchmarkNoopPass measures a whole pass over n converged bottles against
// fake drivers: load n spec files from a real directory, observe, diff,
// apply nothing, write n statuses. The drivers cost nothing here, so this
// is the reconciler's own overhead per pass. The scoped runs are the pass
// a runtime event about one bottle starts (a heal's), among n bottles.
//
//	go test ./reconciler -run XXX -bench NoopPass -benchmem
func BenchmarkNoopPass(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchNoopPass(b, n, "") })
	}
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("scoped/%d", n), func(b *testing.B) { benchNoopPass(b, n, "b0001") })
	}
}

func benchNoopPass(b *testing.B, n int, scope string) {
	dir, state := b.TempDir(), b.TempDir()
	for i := range n {
		name := fmt.Sprintf("b%04d", i)
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(specFor(name)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	net, bun, vm := newFake("net", bottle.RoleNetwork), newFake("bundle", bottle.RoleBundle), newFake("smolvm", bottle.RoleGuest)
	r := New(Config{Dir: dir, Instance: "i1", StateDir: state, MaxDeletes: 5, Concurrency: 4},
		net, bun, map[string]Driver{"smolvm": vm}, logr.Discard())
	ctx := context.Background()
	p, err := r.Reconcile(ctx) // converge once
	if err != nil || !p.Converged() || len(p.Plan.Ops) != 3*n {
		b.Fatalf("first pass: %d ops, err %v, failures %v", len(p.Plan.Ops), err, p.Failures())
	}
	// The second pass records the settled status ("converged this
	// pass" becomes plain Ready): a write per bottle, once.
	if _, err := r.Reconcile(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := r.plan(ctx, nil, scope)
		if err == nil {
			p, err = r.Apply(ctx, p)
		}
		if err != nil || len(p.Plan.Ops) != 0 || p.Scope != scope {
			b.Fatalf("no-op pass: %d ops, scope %q, err %v", len(p.Plan.Ops), p.Scope, err)
		}
	}
}
