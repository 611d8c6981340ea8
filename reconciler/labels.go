package reconciler

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
func Names(bottle string, role Role) string {
	switch role {
	case RoleNetwork:
		return "bottle-" + bottle
	case RoleBundle:
		return "bottle-" + bottle + "-bundle"
	default:
		return "bottle-" + bottle
	}
}
