package reconciler

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// BenchmarkDiff measures a steady-state pass's decision over n converged
// bottles (the common case: nothing to do) and over n new ones.
//
//	go test ./reconciler -run XXX -bench Diff -benchmem
func BenchmarkDiff(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		d := want()
		var converged []bottle.Resource
		for i := range n {
			db := desiredBottle(fmt.Sprintf("b%04d", i))
			d.Bottles[db.Name] = db
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i / 32), byte(i % 32 * 8)}), 29)
			converged = append(converged, chain(db, p.String())...)
		}
		for _, c := range []struct {
			name string
			obs  []bottle.Resource
		}{{"converged", converged}, {"empty-host", nil}} {
			b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
				o := NewObserved(inst, c.obs, nil)
				b.ReportAllocs()
				for b.Loop() {
					Diff(d, o, DiffOptions{Instance: inst, MaxDeletes: 3})
				}
			})
		}
	}
}
