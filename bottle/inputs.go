package bottle

import (
	"slices"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// The inputs of each role are what the reconciler resolves from a bottle's
// spec, once, for the driver of that role: the driver translates them into
// its runtime's calls and decides nothing of its own. The role hashes are
// computed from exactly these (reconciler.HashWant).

// NetworkShape is how a bottle network is made.
type NetworkShape string

// Network shapes.
const (
	// ShapeInternalBridge: an internal bridge whose gateway is the host. A
	// smolvm guest needs it: its VMM reaches the bundle from the host side.
	ShapeInternalBridge NetworkShape = "internal-bridge"
	// ShapeHostless: an internal bridge with no host address at all, for a
	// docker guest, which lives on it and so has no layer-3 path to the host.
	ShapeHostless NetworkShape = "internal-bridge-hostless"
)

// BundleInputs are what a bundle is made from.
type BundleInputs struct {
	// Daemons are the daemons it runs (spec.daemons), empty for none.
	Daemons []string
	// Allow is the egress gate's allow list (spec.egress.allow), normalised.
	Allow []string
}

// GuestInputs are what a guest is made from.
type GuestInputs struct {
	Kind       string // spec.guest
	Image      string
	PullPolicy string
	// Env is the guest's environment, sorted by name, each variable with
	// its source. The reconciler plans it with spec.env's values and
	// envFromHost's names; the host values and the bundle's proxy settings
	// are filled in just before the driver is called, so a plan never reads
	// or holds a secret.
	Env []EnvVar
	// EmptySpecEnv records a spec.env given as {}: the guest hash has always
	// told it from an absent env, and keeps doing so, so that the upgrade
	// recreates no guest. Nothing else reads it.
	EmptySpecEnv bool
	// Daemons are the bundle's daemons: which of them the guest may reach.
	Daemons    []string
	AllowCIDRs []string
	CPUs       int
	MemoryMiB  int
	Workspace  *spec.Workspace
}

// Runs reports whether the guest's bundle runs daemon d.
func (g GuestInputs) Runs(d string) bool { return slices.Contains(g.Daemons, d) }
