package dockernet

import "net/netip"

// The address layout of a bottle subnet: .0 is the network, .1 the gateway
// (the host's address on the bridge), .2 the bundle and .3 the guest.

// Gateway returns the gateway address of subnet p: its first host address.
func Gateway(p netip.Prefix) netip.Addr { return nth(p, 1) }

// BundleAddr returns the bundle's pinned address in subnet p.
func BundleAddr(p netip.Prefix) netip.Addr { return nth(p, 2) }

// GuestAddr returns the guest's pinned address in subnet p.
func GuestAddr(p netip.Prefix) netip.Addr { return nth(p, 3) }

func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}
