package dockerx

import (
	"fmt"
	"net/netip"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// SubnetBits is the size of an allocated bottle subnet: a /29 holds the
// network, gateway, bundle and guest addresses with room to spare.
const SubnetBits = 29

// DefaultLockPath is the subnet lock both Docker drivers take: the network
// driver across list, choose and create, the sidecar driver around making
// an instance's egress network.
const DefaultLockPath = "/run/bottle-reconcile/subnet.lock"

// Pool is the pool option of driver: p masked, or spec.DefaultPool when p
// is unset; an error when it cannot hold a bottle subnet. The network
// driver carves subnets from it, the sidecar driver has bundles refuse it.
func Pool(driver string, p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		p = spec.DefaultPool
	}
	if !p.Addr().Is4() || p.Bits() > SubnetBits {
		return p, fmt.Errorf("%s: pool %s must be an IPv4 prefix of /%d or larger", driver, p, SubnetBits)
	}
	return p.Masked(), nil
}
