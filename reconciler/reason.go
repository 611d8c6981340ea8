package reconciler

// Reason classifies why an operation is planned. Op.Cause says it for
// people ("bundle exited (137)"); Reason says it for code, so nothing has to
// read the cause's words. Its values are part of `plan -o json`.
type Reason string

// Reasons.
const (
	// ReasonNew: the bottle has none of its resources yet.
	ReasonNew Reason = "new"
	// ReasonSpecChanged: the spec asks for something else (a role's hash,
	// spec.guest, a pinned subnet).
	ReasonSpecChanged Reason = "spec-changed"
	// ReasonDrift: the runtime moved away from what was made (a resource
	// gone, exited, stopped or unhealthy, an address moved, host rules or
	// routes lost), and the operation puts it right.
	ReasonDrift Reason = "drift"
	// ReasonBroken: ours, but not as any spec makes it (left half made, a
	// twin, a stray network, a network without an IPv4 subnet).
	ReasonBroken Reason = "broken"
	// ReasonSpecRemoved: the bottle's spec file is gone.
	ReasonSpecRemoved Reason = "spec-removed"
	// ReasonDown: `bottle-reconcile down` asked for it.
	ReasonDown Reason = "down"
)
