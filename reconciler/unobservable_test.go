package reconciler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/go-logr/logr/testr"
)

// With its guest runtime gone from PATH, a smolvm bottle is never torn
// down under its possibly live VM, by a pass or by down, unless down is
// told to abandon the guest; a bottle of a guest kind that is observed
// goes on as usual.
func TestUnobservableGuestKindHoldsItsBottles(t *testing.T) {
	g := newRig(t, "i1")
	dock := newFake("docker-guest", bottle.RoleGuest)
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4},
		g.net, g.bun, map[string]Driver{"smolvm": g.vm, "docker": dock}, testr.New(t))
	g.write("vm.yaml", specFor("vm"))
	g.write("d.yaml", specFor("d", "guest: docker"))
	g.write("d2.yaml", specFor("d2", "guest: docker"))
	if p := g.pass(); !p.Converged() {
		t.Fatalf("first pass: %v", p.Failures())
	}
	g.writes()
	dock.writes()

	g.vm.failOn["observe"] = fmt.Errorf("smolvm is not installed: %w", bottle.ErrUnobservable)
	for _, f := range []string{"vm.yaml", "d.yaml"} {
		if err := os.Remove(filepath.Join(g.dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	p := g.pass()
	if w := g.writes(); slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "bottle-vm") }) {
		t.Errorf("a pass touched the bottle whose guest cannot be seen: %q", w)
	}
	if w := dock.writes(); !slices.Contains(w, "delete bottle-d") {
		t.Errorf("the removed docker bottle was not torn down: %q", w)
	}
	if p.Converged() || !slices.ContainsFunc(p.Failures(), func(s string) bool {
		return strings.Contains(s, "bottle vm: unobservable: spec file removed, but no guest of this bottle is seen") && strings.Contains(s, "smolvm is not installed")
	}) {
		t.Errorf("pass failures %q, want the held smolvm bottle named with why", p.Failures())
	}
	st, err := g.r.Status().All()
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(st, func(s Status) bool { return s.Bottle == "vm" }); i < 0 || st[i].State != StatusFailed || !strings.Contains(st[i].LastError, "cannot be observed") {
		t.Errorf("status of vm: %+v", st)
	}

	// A spec that wants a smolvm guest is held too: nothing is made.
	g.write("vm2.yaml", specFor("vm2"))
	g.pass()
	if w := g.writes(); len(w) != 0 {
		t.Errorf("a pass made parts of a bottle whose guest kind cannot be seen: %q", w)
	}

	// down refuses it, --force or not, unless told to abandon the guest.
	p, err = g.r.Down(context.Background(), nil, true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if w := g.writes(); slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "bottle-vm") }) {
		t.Errorf("down --all --force touched the bottle whose guest cannot be seen: %q", w)
	}
	if f := p.DownFailures(); !slices.ContainsFunc(f, func(s string) bool { return strings.Contains(s, "--abandon-guest") }) {
		t.Errorf("down failures %q, want one naming --abandon-guest", f)
	}
	if _, err := g.r.Down(context.Background(), []string{"vm"}, false, true, true); err != nil {
		t.Fatal(err)
	}
	if w := g.writes(); !slices.Contains(w, "delete bottle-vm") || !slices.Contains(w, "delete bottle-vm-bundle") {
		t.Errorf("down --abandon-guest did not tear the bottle down: %q", w)
	}
}
