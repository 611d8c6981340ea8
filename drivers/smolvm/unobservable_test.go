package smolvm

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/go-logr/logr/testr"
)

// A smolvm binary that is gone (a path that no longer exists, a name no
// longer in PATH) makes Observe say it cannot observe, so the reconciler
// holds smolvm bottles instead of taking "no machines" for the truth.
func TestObserveWithoutBinaryIsUnobservable(t *testing.T) {
	for _, bin := range []string{filepath.Join(t.TempDir(), "smolvm"), "smolvm-that-is-not-in-path"} {
		d, err := New(testr.New(t), Options{Binary: bin, NoHostLayer: true})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := d.Observe(context.Background())
		if rs != nil || !errors.Is(err, bottle.ErrUnobservable) {
			t.Errorf("Observe with %s = %v, %v; want ErrUnobservable", bin, rs, err)
		}
	}
}
