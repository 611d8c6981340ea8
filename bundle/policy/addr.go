package policy

import (
	"net/netip"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Refused reports whether ip lies in a refused range (spec.RefusedRanges,
// the one table the validator uses too) or in one of extra, looking
// through the IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64,
// 6to4). The reason names the range. An invalid or zoned address is
// refused.
func Refused(ip netip.Addr, extra []netip.Prefix) (string, bool) {
	return spec.RefusedAddr(ip, extra)
}
