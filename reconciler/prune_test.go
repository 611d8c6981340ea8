package reconciler

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// TestDeletionCapBoundary checks the cap at its edge: exactly max bottles
// may go in one pass, one more holds all of them, 0 holds every prune and
// a negative cap holds none.
func TestDeletionCapBoundary(t *testing.T) {
	gone := func(n int) []bottle.Resource {
		var rs []bottle.Resource
		for i := range n {
			rs = append(rs, chain(desiredBottle(fmt.Sprintf("b%d", i)), fmt.Sprintf("10.213.%d.0/29", i))...)
		}
		return rs
	}
	tests := []struct {
		name      string
		gone, max int
		deletes   int // delete operations planned (three per bottle)
		capped    int // bottles noted as capped
	}{
		{"one under the cap", 2, 3, 6, 0},
		{"exactly the cap", 3, 3, 9, 0},
		{"one over the cap", 4, 3, 0, 4},
		{"cap of one, one bottle", 1, 1, 3, 0},
		{"cap of one, two bottles", 2, 1, 0, 2},
		{"cap 0 holds a single prune", 1, 0, 0, 1},
		{"cap 0 holds many", 3, 0, 0, 3},
		{"cap 0 with nothing gone", 0, 0, 0, 0},
		{"no cap", 5, -1, 15, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(want(), NewObserved(inst, gone(tt.gone), nil), DiffOptions{Instance: inst, MaxDeletes: tt.max})
			capped := 0
			for _, n := range p.Notes {
				if n.Kind == NoteCapped {
					capped++
				}
			}
			if got := p.Count()[ActionDelete]; got != tt.deletes || capped != tt.capped || len(p.Ops) != tt.deletes {
				t.Errorf("%d gone, cap %d: %d deletes and %d capped, want %d and %d\n%s", tt.gone, tt.max, got, capped, tt.deletes, tt.capped, p)
			}
		})
	}
}

// TestProtectLabelAloneProtects removes a protected bottle's spec file with
// an empty state directory (no status recorded, as after a fresh install or
// a lost disk): the protect label on its resources must still hold it. The
// same without the label tears down, so the test sees the label's effect.
func TestProtectLabelAloneProtects(t *testing.T) {
	for _, tt := range []struct {
		name     string
		extra    []string
		wantKept bool
	}{
		{"protected", []string{"protect: true"}, true},
		{"unprotected", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, "i1")
			g.write("p.yaml", specFor("p", tt.extra...))
			g.write("keep.yaml", specFor("keep")) // an empty directory would block every prune
			g.pass()
			g.writes()
			g.state = t.TempDir()
			g.r = g.reconciler("i1")
			if sts, err := g.r.Status().All(); err != nil || len(sts) != 0 {
				t.Fatalf("fresh state directory has statuses %v (%v)", sts, err)
			}
			if err := os.Remove(filepath.Join(g.dir, "p.yaml")); err != nil {
				t.Fatal(err)
			}
			p := g.pass()
			w := g.writes()
			if tt.wantKept {
				if len(w) != 0 || !strings.Contains(p.Plan.String(), "bottle p: protected:") {
					t.Fatalf("protect label ignored without a status: writes %v\n%s", w, p.Plan)
				}
				return
			}
			if len(w) != 3 {
				t.Fatalf("unprotected bottle: writes %v, want its three deletes\n%s", w, p.Plan)
			}
		})
	}
}
