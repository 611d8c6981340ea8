package bottle

import "net/netip"

// The fixed layout of a bottle subnet: .0 is the network, .1 the gateway (the
// host's side of the bridge), .2 the bundle and .3 the guest when the guest
// lives on the bottle network. Fixed offsets make an address a pure function
// of the subnet, so a restarted reconciler finds the same addresses.

// Gateway returns the bridge's address in subnet p.
func Gateway(p netip.Prefix) netip.Addr { return nth(p, 1) }

// BundleAddr returns the bundle's pinned address in subnet p.
func BundleAddr(p netip.Prefix) netip.Addr { return nth(p, 2) }

// GuestAddr returns a network-attached guest's address in subnet p.
func GuestAddr(p netip.Prefix) netip.Addr { return nth(p, 3) }

func nth(p netip.Prefix, n int) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}
