package reconciler

import (
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func TestSpecHashes(t *testing.T) {
	a := &spec.Bottle{Spec: spec.Spec{Guest: "smolvm", Image: "agent:1", Daemons: []string{"egress"}}}
	b := &spec.Bottle{Spec: spec.Spec{Guest: "smolvm", Image: "agent:2"}}
	var h specHashes

	got := h.of([]*spec.Bottle{a, b})
	if got[a] != hashRoles(a.Spec) || got[b] != hashRoles(b.Spec) || got[a] == got[b] {
		t.Fatalf("first pass: %v, want each spec's own hashes", got)
	}
	// A parsed spec is never changed; changing one here shows that a spec
	// seen last pass is not hashed again.
	a.Spec.Image = "agent:3"
	if got := h.of([]*spec.Bottle{a}); got[a] != hashRoles(spec.Spec{Guest: "smolvm", Image: "agent:1", Daemons: []string{"egress"}}) {
		t.Errorf("a spec seen last pass was hashed again")
	}
	// Only the last pass's specs are kept: b, absent from it, is gone, and
	// a, absent from this one, is hashed afresh when it comes back.
	h.of([]*spec.Bottle{b})
	if _, kept := h.m[a]; kept || len(h.m) != 1 {
		t.Errorf("memo holds %d specs after a pass over one", len(h.m))
	}
	if got := h.of([]*spec.Bottle{a}); got[a] != hashRoles(a.Spec) {
		t.Errorf("a spec that came back was not hashed afresh")
	}
}

func TestDesiredBottleHash(t *testing.T) {
	s := spec.Spec{Guest: "smolvm", Image: "agent:1"}
	plain := &DesiredBottle{Spec: s}
	filled := &DesiredBottle{Spec: s, hashes: hashRoles(s)}
	for _, r := range bottle.Roles {
		if plain.hash(r) != Hash(r, s) || filled.hash(r) != Hash(r, s) {
			t.Errorf("%s: hash %q and %q, want %q", r, plain.hash(r), filled.hash(r), Hash(r, s))
		}
	}
	if fingerprint(plain) != fingerprint(filled) {
		t.Error("the fingerprint depends on whether the hashes were filled in")
	}
}

// TestPassHashesAreTheSpecs: what a reconciler's passes fill in from its memo
// is what Hash computes, pass after pass and after an edit.
func TestPassHashesAreTheSpecs(t *testing.T) {
	g := newRig(t, "i1")
	g.write("a.yaml", specFor("a"))
	g.write("b.yaml", specFor("b"))
	check := func(p *Pass) {
		t.Helper()
		for n, db := range p.Desired.Bottles {
			if db.hashes == (roleHashes{}) {
				t.Errorf("%s: no hashes filled in", n)
			}
			for _, r := range bottle.Roles {
				if db.hash(r) != Hash(r, db.Spec) {
					t.Errorf("%s %s: hash %q, want %q", n, r, db.hash(r), Hash(r, db.Spec))
				}
			}
		}
	}
	p1 := g.pass()
	check(p1)
	p2 := g.pass()
	check(p2)
	// The memo pays because the spec cache hands out the same parsed spec
	// for an unchanged file, and a new one for an edited file.
	if p1.Specs.Bottles[0] != p2.Specs.Bottles[0] || p1.Specs.Bottles[1] != p2.Specs.Bottles[1] {
		t.Error("an unchanged file was parsed into a new spec: the memo never hits")
	}
	g.write("a.yaml", specFor("a", "env: {MODE: fast}"))
	p3 := g.pass()
	check(p3)
	if p3.Specs.Bottles[0] == p2.Specs.Bottles[0] || p3.Specs.Bottles[1] != p2.Specs.Bottles[1] {
		t.Error("the edited file kept its parsed spec, or the other lost it")
	}
}
