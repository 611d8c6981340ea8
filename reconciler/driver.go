package reconciler

import (
	"context"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// Driver creates, observes and deletes the resources of one role. It is kept
// small on purpose: a changed resource is deleted and created again, never
// updated in place.
type Driver interface {
	// Kind names the driver, e.g. "dockernet-network" or "smolvm".
	Kind() string
	// Role is the role of every resource this driver manages.
	Role() bottle.Role
	// Observe lists every resource carrying the managed-by label, of every
	// instance, in one call to the runtime; under bottle.WithScope it may
	// list that bottle's alone. It never returns a partial list: an error
	// means nothing is known.
	Observe(ctx context.Context) ([]bottle.Resource, error)
	// Create makes the resource and returns it as observed. A resource of the
	// same name that does not carry our labels is an error that names it.
	Create(ctx context.Context, w bottle.Want) (bottle.Resource, error)
	// Delete removes the resource. Removing something already gone is success.
	Delete(ctx context.Context, r bottle.Resource) error
}

// Starter is implemented by drivers whose resources can be stopped and started
// again without losing them (guests), so a dead guest is restarted, not
// recreated. Both are idempotent.
type Starter interface {
	Start(ctx context.Context, r bottle.Resource) error
	Stop(ctx context.Context, r bottle.Resource) error
}

// Repairer is implemented by drivers that set Resource.Drift: Repair puts
// back what the resource depends on (e.g. host firewall rules someone
// flushed) without recreating it. It is idempotent.
type Repairer interface {
	Repair(ctx context.Context, r bottle.Resource) error
}

// Versioned is implemented by drivers whose runtime has a version worth
// reporting in status (e.g. smolvm, whose features depend on it).
type Versioned interface {
	Version(ctx context.Context) (string, error)
}

// Cleaner is implemented by drivers that keep per-instance resources of
// their own besides the bottles' (the sidecar driver's egress network). Cleanup
// removes them; the reconciler calls it once an instance has no bottles
// left. Something still in use is left alone, without an error.
type Cleaner interface {
	Cleanup(ctx context.Context, instance string) error
}

// Preparer is implemented by drivers with work that no bottle owns and a
// first create needs (the sidecar driver finds or builds its bundle image,
// hashing its binary). A watcher calls Prepare once, after the first pass
// that has bottles to keep, so that its first heal does not pay for it;
// --once does not, as a no-op pass would pay for nothing.
type Preparer interface {
	Prepare(ctx context.Context) error
}

// HashFacter is implemented by drivers whose resources are made from more
// than the spec: facts of the host or flags of the reconciler (a bundle's
// refused host addresses, non-default DNS limits). HashFacts returns them in
// one canonical string, "" when there are none worth hashing. They are read
// once a pass and hashed into each of the driver's resources, so when they
// change the next pass replaces those resources.
type HashFacter interface {
	HashFacts(ctx context.Context) (string, error)
}
