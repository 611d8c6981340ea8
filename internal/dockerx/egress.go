package dockerx

// RoleEgress labels an instance's egress network. It is not a bottle role:
// the reconciler never observes it; the sidecar driver makes it on demand,
// and the Docker event source maps its events to every bottle.
const RoleEgress = "egress"

// EgressNetworkName is the name of an instance's egress network: the
// non-internal bridge every bundle of that instance reaches the world by.
func EgressNetworkName(instance string) string { return "bottle-egress-" + instance }
