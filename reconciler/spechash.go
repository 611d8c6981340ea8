package reconciler

import (
	"slices"
	"sync"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// roleHashes are a spec's Hash for each role, in bottle.Roles order; a zero
// entry was not computed.
type roleHashes [3]string

func hashRoles(s spec.Spec) roleHashes {
	var h roleHashes
	for i, r := range bottle.Roles {
		h[i] = Hash(r, s)
	}
	return h
}

// roleIndex is r's place in bottle.Roles, or -1.
func roleIndex(r bottle.Role) int { return slices.Index(bottle.Roles, r) }

// specHashes remembers each spec's role hashes across passes. A pass over
// 1000 bottles would otherwise encode and hash every spec six times (the
// diff three, the status fingerprint three), two fifths of its CPU, to find
// what it found last pass.
//
// It is keyed by the parsed spec the spec cache hands out: an unchanged file
// is the same *spec.Bottle pass after pass, and a changed one is parsed into
// a new one, whose hashes are computed afresh. A key cannot be reused by a
// new allocation while it is in the map (the map keeps it alive), and only
// the last pass's bottles are kept.
type specHashes struct {
	mu sync.Mutex
	m  map[*spec.Bottle]roleHashes
}

// of returns the role hashes of every bottle in bs, computing only those of
// bottles it has not seen, and forgets every bottle not in bs.
func (h *specHashes) of(bs []*spec.Bottle) map[*spec.Bottle]roleHashes {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := make(map[*spec.Bottle]roleHashes, len(bs))
	for _, b := range bs {
		rh, ok := h.m[b]
		if !ok {
			rh = hashRoles(b.Spec)
		}
		next[b] = rh
	}
	h.m = next
	return next
}
