package bottle

// Label keys carried by every resource bottle-reconcile creates. Ownership is
// decided by these labels only, never by name.
const (
	labelPrefix = "dev.bottle-reconcile."

	LabelManagedBy   = labelPrefix + "managed-by"   // always ManagedByValue
	LabelInstance    = labelPrefix + "instance"     // the reconciler instance that owns it
	LabelBottle      = labelPrefix + "bottle"       // metadata.name of the bottle
	LabelRole        = labelPrefix + "role"         // network, bundle or guest
	LabelHash        = labelPrefix + "hash"         // hash of the spec fields that define it
	LabelHashVersion = labelPrefix + "hash-version" // version of the hash function

	ManagedByValue = "bottle-reconcile"
)

// Names returns the runtime name of a bottle's resource of the given role.
// A guest driver may name its guests otherwise (Namer).
func Names(bottle string, role Role) string {
	if role == RoleBundle {
		return "bottle-" + bottle + "-bundle"
	}
	return "bottle-" + bottle
}

// Labels that record facts rather than identity.
const (
	// LabelProtect is set on every resource of a protected bottle, so the
	// protection outlives the spec file.
	LabelProtect = labelPrefix + "protect"
	// LabelBundleAddr is set on guests: the bundle address their egress is
	// locked to. A guest whose lock points elsewhere is recreated.
	LabelBundleAddr = labelPrefix + "bundle-addr"
	// LabelFacts is set when a driver's HashFacts were hashed in: a digest
	// of them, so a replace can say that they changed, not the spec.
	LabelFacts = labelPrefix + "facts"
)

// OwnerLabels returns the labels that mark a resource of bottle b as owned by
// this instance, with the hash of its role.
func OwnerLabels(instance, bottle string, role Role, hash string) map[string]string {
	return map[string]string{
		LabelManagedBy:   ManagedByValue,
		LabelInstance:    instance,
		LabelBottle:      bottle,
		LabelRole:        string(role),
		LabelHash:        hash,
		LabelHashVersion: HashVersion,
	}
}

// Labelled returns a Resource of the given kind, role and name whose
// identity (bottle, instance, hash, hash version) is read from its labels,
// the only place a driver may learn it from. labels is copied.
func Labelled(kind string, role Role, name string, labels map[string]string) Resource {
	l := make(map[string]string, len(labels))
	for k, v := range labels {
		l[k] = v
	}
	return Resource{
		Kind: kind, Role: role, Name: name, Labels: l,
		Bottle:      l[LabelBottle],
		Instance:    l[LabelInstance],
		Hash:        l[LabelHash],
		HashVersion: l[LabelHashVersion],
	}
}

// ValidInstance reports whether s can name a reconciler instance: 1 to 63
// of a-z, 0-9 and '-'. Such a name goes as it is into label values, host
// firewall rule comments and cgroup names; bottle names are narrower still.
func ValidInstance(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// HashVersion is the version of the reconciler's hash functions. A resource whose
// hash-version label differs is never recreated for its hash alone, so a
// change of hashing in a new release does not recreate every bottle.
const HashVersion = "1"

// LabelGuestKind records, on a bottle's network and bundle, the kind of
// guest it was made for, so a bottle that lost its guest can be told
// apart from one whose guest cannot be seen.
const LabelGuestKind = labelPrefix + "guest-kind"
