package dockernet

import (
	"net/netip"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// The address layout of a bottle subnet is the reconciler's (.0 network, .1
// gateway, .2 bundle, .3 guest); these forward to it so there is one layout.

// Gateway returns the gateway address of subnet p: its first host address.
func Gateway(p netip.Prefix) netip.Addr { return bottle.Gateway(p) }

// BundleAddr returns the bundle's pinned address in subnet p.
func BundleAddr(p netip.Prefix) netip.Addr { return bottle.BundleAddr(p) }

// GuestAddr returns the guest's pinned address in subnet p.
func GuestAddr(p netip.Prefix) netip.Addr { return bottle.GuestAddr(p) }
