// Package hostaddr lists the host's own addresses that no refused range
// covers: its public ones, which a bundle must refuse by address since no
// range says "this host".
package hostaddr

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Unrefused returns, sorted and without duplicates, the addresses of every
// interface of the host that spec.RefusedAddr does not already refuse with
// extra (the pool, whose bridge gateways are the other bottles'). Loopback,
// private, link-local and Docker bridge addresses are left out, so the set
// changes only when a public address does.
func Unrefused(extra []netip.Prefix) ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("hostaddr: list the host's interface addresses: %w", err)
	}
	var ips []netip.Addr
	for _, a := range as {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				ips = append(ips, ip)
			}
		}
	}
	return Filter(ips, extra), nil
}

// Filter keeps the addresses of ips that no refused range covers, unmapped,
// sorted and without duplicates.
func Filter(ips []netip.Addr, extra []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap().WithZone("")
		if _, refused := spec.RefusedAddr(ip, extra); !refused {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
