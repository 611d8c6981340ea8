package bottle

import "net/netip"

// Role is the part a resource plays in a bottle. A bottle is one resource of
// each role, created in this order and torn down in reverse.
type Role string

// The roles of a bottle, in creation order.
const (
	RoleNetwork Role = "network"
	RoleBundle  Role = "bundle"
	RoleGuest   Role = "guest"
)

// Roles lists the roles in creation order.
var Roles = []Role{RoleNetwork, RoleBundle, RoleGuest}

// State is the run state of an observed resource, normalised across drivers.
type State string

// Observed run states. Networks are always StateRunning.
const (
	StateRunning State = "running"
	StateCreated State = "created" // exists, never started
	StateStopped State = "stopped" // exited, died, or stopped on purpose
	StateUnknown State = "unknown"
)

// Health is a resource's health as its runtime reports it.
type Health string

// Health values. HealthNone means the runtime has no health check for it.
const (
	HealthNone      Health = ""
	HealthStarting  Health = "starting"
	HealthHealthy   Health = "healthy"
	HealthUnhealthy Health = "unhealthy"
)

// Resource is one observed thing that a driver owns: a network, a bundle
// container or a guest. Everything the diff needs is here, so the diff never
// calls back into a driver.
type Resource struct {
	Kind        string // the driver that observed it (Driver.Kind)
	Role        Role
	Bottle      string // from the bottle label
	Instance    string // from the instance label
	Name        string // the runtime's name for it, e.g. bottle-alice-bundle
	ID          string // the runtime's ID, when it has one
	Hash        string // from the hash label
	HashVersion string // from the hash-version label
	Labels      map[string]string

	State  State
	Health Health
	Detail string // runtime detail for humans, e.g. "exited (137)"

	Subnet netip.Prefix // networks: the subnet it really has
	Addr   netip.Addr   // bundles and docker guests: their address on the bottle network

	// Drift, when set, says how the resource's surroundings no longer match
	// what its driver set up (e.g. "host firewall rules missing"); the diff
	// plans a repair by a driver that implements Repairer, else a recreate.
	Drift string
	// Broken, when set, says why the resource cannot reach its desired
	// state in place: neither a start nor a repair would help (e.g. a
	// container a daemon crash left half made). The diff replaces it.
	Broken string
}

// Want is everything a driver needs to create one resource. The reconciler
// fills it in, resolving the spec into the inputs of the resource's role
// (the one of Shape, Bundle and Guest that the role reads); the driver adds
// nothing of its own but runtime detail.
type Want struct {
	Bottle string
	Role   Role
	Name   string            // runtime name, from Names
	Labels map[string]string // ownership, hash and hash-version labels, set by the reconciler

	Shape  NetworkShape // networks
	Bundle BundleInputs // bundles
	Guest  GuestInputs  // guests

	// Network is the bottle network's name (bundles and docker guests attach to it).
	Network string
	// Subnet is the bottle subnet. For a network it is the pinned subnet, or
	// the zero Prefix to allocate one from the pool; for the other roles it is
	// the subnet of the bottle's network, filled in once the network exists.
	Subnet netip.Prefix
	// BundleAddr is the bundle's pinned address in Subnet; GuestAddr the guest's
	// (used by guests that live on the bottle network).
	BundleAddr netip.Addr
	GuestAddr  netip.Addr
}

// Fill sets the addresses that follow from the bottle's subnet, once known.
func (w *Want) Fill(subnet netip.Prefix) {
	if w.Role == RoleNetwork {
		return
	}
	w.Subnet = subnet
	w.BundleAddr = BundleAddr(subnet)
	w.GuestAddr = GuestAddr(subnet)
	if w.Role == RoleGuest {
		w.Labels[LabelBundleAddr] = w.BundleAddr.String()
	}
}
