package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The deletion cap at its edge, through the binary: --max-deletes 0
// refuses every prune, N-1 refuses N, N allows N. And a protected bottle
// whose state directory was lost (no status to say so) is still protected
// by the label on its resources; it does not count against the cap.
func TestDeletionCapBoundaryAndProtectLabel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, b := range []string{"a", "b", "keep"} {
		e.write(b, bottleSpec{})
	}
	e.write("p", bottleSpec{Protect: true})
	e.mustOnce()
	e.assertCounts(4)
	before, nCalls := e.ids(), len(e.calls())

	e.remove("a")
	e.remove("b")
	for _, max := range []string{"0", "1"} {
		r := e.once("--max-deletes", max)
		if r.code != 1 || !strings.Contains(r.stderr, "--allow-mass-delete") {
			t.Errorf("2 removals with --max-deletes %s: want exit 1 naming --allow-mass-delete\n%s", max, r)
		}
		if got := ops(t, r.stderr, ""); len(got) > 0 {
			t.Errorf("--max-deletes %s: capped pass ran operations: %v", max, got)
		}
		e.assertUnchanged(before, nCalls)
	}

	// Lose the state directory, then the protected bottle's file.
	if err := os.RemoveAll(e.state); err != nil {
		t.Fatal(err)
	}
	e.remove("p")
	r := e.once("--max-deletes", "2")
	if r.code != 0 {
		t.Errorf("2 removals with --max-deletes 2: want exit 0\n%s", r)
	}
	for _, b := range []string{"a", "b"} {
		want := []string{"delete guest", "delete bundle", "delete network"}
		if got := opStrings(ops(t, r.stderr, e.name(b))); !slices.Equal(got, want) {
			t.Errorf("operations on %s: %v, want %v", e.name(b), got, want)
		}
		e.assertGone(e.name(b))
	}
	if got := ops(t, r.stderr, e.name("p")); len(got) > 0 {
		t.Errorf("the pass acted on the protected bottle with no state: %v", got)
	}
	e.assertBottle(e.name("p"))
	e.assertBottle(e.name("keep"))
	e.assertCounts(2)
}
