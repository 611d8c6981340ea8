package reconciler

import (
	"net/netip"
	"sort"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// DesiredBottle is one valid spec, as the diff needs it.
type DesiredBottle struct {
	Name   string
	Source string
	Spec   spec.Spec
	// Subnet is the pinned subnet, or the zero Prefix when one is allocated.
	Subnet netip.Prefix
	// NetworkKind, BundleKind and GuestKind are the Kinds of the drivers
	// that make this bottle's resources; GuestName is its guest's name.
	NetworkKind, BundleKind, GuestKind string
	GuestName                          string
	// hashes are Hash(role, Spec), when the reconciler filled them in from
	// what it computed for the same spec in an earlier pass (specHashes).
	hashes roleHashes
}

// hash returns Hash(role, d.Spec).
func (d *DesiredBottle) hash(role bottle.Role) string {
	if i := roleIndex(role); i >= 0 && d.hashes[i] != "" {
		return d.hashes[i]
	}
	return Hash(role, d.Spec)
}

func (d *DesiredBottle) guestName() string {
	if d.GuestName != "" {
		return d.GuestName
	}
	return bottle.Names(d.Name, bottle.RoleGuest)
}

// Desired is what the spec directory asks for in one pass.
type Desired struct {
	Bottles map[string]*DesiredBottle
	// Held maps bottles whose file is invalid or claimed twice to the reason:
	// they are left exactly as they are.
	Held map[string]string
	// PruneBlocked, when set, says why no bottle may be torn down this pass:
	// an invalid file whose bottle name cannot be read might be any of them.
	PruneBlocked string
}

// Observed is one snapshot of everything the drivers own, taken before the
// diff so that the diff makes no calls.
type Observed struct {
	// Resources of this instance, by bottle.
	Bottles map[string]*ObservedBottle
	// Others are managed resources of other reconciler instances. They are
	// never touched, only used to explain name collisions.
	Others []bottle.Resource
	// Protected lists bottles known to be protected even though their spec
	// may be gone: from the last status recorded for them, or from the
	// protect label when no status was recorded.
	Protected map[string]bool
	// Unobservable maps each guest kind whose driver could not observe at
	// all (ErrUnobservable) to why.
	Unobservable map[string]string
}

// ObservedBottle is what exists of one bottle.
type ObservedBottle struct {
	Name      string
	Resources []bottle.Resource
}

// Of returns the bottle's resources of role r, sorted by name.
func (b *ObservedBottle) Of(r bottle.Role) []bottle.Resource {
	if b == nil {
		return nil
	}
	var out []bottle.Resource
	for _, x := range b.Resources {
		if x.Role == r {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// NewObserved sorts resources into a snapshot: ours by bottle, the rest aside.
func NewObserved(instance string, resources []bottle.Resource, protected map[string]bool) Observed {
	o := Observed{Bottles: map[string]*ObservedBottle{}, Protected: protected}
	if o.Protected == nil {
		o.Protected = map[string]bool{}
	}
	for _, r := range resources {
		if r.Instance != instance || r.Bottle == "" {
			o.Others = append(o.Others, r)
			continue
		}
		b := o.Bottles[r.Bottle]
		if b == nil {
			b = &ObservedBottle{Name: r.Bottle}
			o.Bottles[r.Bottle] = b
		}
		b.Resources = append(b.Resources, r)
	}
	return o
}
