package dockerx

import "github.com/bottle-reconcile/bottle-reconcile/bottle"

// Ref is how to find r again: its ID when known, which cannot have been
// reused by something else of the same name.
func Ref(r bottle.Resource) string {
	if r.ID != "" {
		return r.ID
	}
	return r.Name
}
