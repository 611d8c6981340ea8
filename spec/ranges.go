package spec

import (
	"fmt"
	"net/netip"
)

// RefusedRange is an address range a guest must not reach, and why. The
// one table of them serves both the validator (allowCIDRs, pinned
// subnets) and the bundle's egress gate (where names resolve to), so the
// two can never disagree about what is dangerous.
type RefusedRange struct {
	Prefix netip.Prefix
	Reason string
	// Explicit ranges are refused when a name resolves into them, but a
	// spec may still open a direct path to them with allowCIDRs: a team's
	// own private network, chosen on purpose and reviewed.
	Explicit bool
	// Translator ranges carry IPv4 addresses inside (NAT64, 6to4): the gate
	// judges the address inside, and allowCIDRs may not overlap them at all,
	// since they map onto every refused IPv4 address.
	Translator bool
}

// RefusedRanges is that table.
var RefusedRanges = []RefusedRange{
	{Prefix: pfx("0.0.0.0/8"), Reason: "is the unspecified (\"this host\") range"},
	{Prefix: pfx("10.0.0.0/8"), Reason: "is private (RFC 1918)", Explicit: true},
	// smolvm maps this guest-side address onto the host's loopback.
	{Prefix: pfx("100.96.0.1/32"), Reason: "is where smolvm maps the host's loopback into a guest"},
	{Prefix: pfx("100.64.0.0/10"), Reason: "is shared address space (CGNAT)", Explicit: true},
	{Prefix: pfx("127.0.0.0/8"), Reason: "reaches the host's loopback"},
	{Prefix: pfx("169.254.0.0/16"), Reason: "is link-local, where cloud metadata (169.254.169.254) lives"},
	{Prefix: pfx("172.16.0.0/12"), Reason: "is private (RFC 1918)", Explicit: true},
	{Prefix: pfx("192.0.0.0/24"), Reason: "is IETF protocol assignments", Explicit: true},
	{Prefix: pfx("192.168.0.0/16"), Reason: "is private (RFC 1918)", Explicit: true},
	// Benchmarking space, also used for fake-IP DNS by some host proxies.
	{Prefix: pfx("198.18.0.0/15"), Reason: "is benchmarking space", Explicit: true},
	{Prefix: pfx("224.0.0.0/4"), Reason: "is multicast"},
	// Reserved space including the limited broadcast address.
	{Prefix: pfx("240.0.0.0/4"), Reason: "is reserved or broadcast"},

	{Prefix: pfx("::/128"), Reason: "is the unspecified address"},
	{Prefix: pfx("::1/128"), Reason: "reaches the host's loopback"},
	// Deprecated IPv4-compatible and SIIT forms: never legitimate targets,
	// and each could smuggle an IPv4 address past a v4-only check.
	{Prefix: pfx("::/96"), Reason: "is IPv4-compatible IPv6 (it spells IPv4 addresses such as ::7f00:1, the loopback)"},
	{Prefix: pfx("::ffff:0:0:0/96"), Reason: "is IPv4-translated IPv6 (SIIT)"},
	{Prefix: pfx("64:ff9b::/96"), Reason: "is NAT64, which reaches every IPv4 address (the loopback and metadata included)", Translator: true},
	{Prefix: pfx("64:ff9b:1::/48"), Reason: "is local-use NAT64"},
	// Teredo tunnels to an arbitrary, obfuscated IPv4 client address.
	{Prefix: pfx("2001::/32"), Reason: "is Teredo, which tunnels to IPv4 addresses"},
	{Prefix: pfx("2002::/16"), Reason: "is 6to4, which reaches every IPv4 address (the loopback and metadata included)", Translator: true},
	{Prefix: pfx("fc00::/7"), Reason: "is unique local (ULA), where cloud IPv6 metadata (fd00:ec2::254) lives"},
	{Prefix: pfx("fe80::/10"), Reason: "is link-local"},
	{Prefix: pfx("fec0::/10"), Reason: "is site-local (deprecated)"},
	{Prefix: pfx("ff00::/8"), Reason: "is multicast"},
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// mappedV4 is all of IPv4 in IPv4-mapped IPv6 spelling; nat64 and sixToFour
// are the translator ranges whose addresses carry an IPv4 address inside.
var (
	mappedV4  = pfx("::ffff:0.0.0.0/96")
	nat64     = pfx("64:ff9b::/96")
	sixToFour = pfx("2002::/16")
)

// RefusedAddr reports why the egress gate refuses ip: it lies in a refused
// range (any kind but a translator's) or in one of extra, directly or
// through an IPv6 form that carries an IPv4 address (IPv4-mapped, NAT64,
// 6to4). An invalid or zoned address is refused.
func RefusedAddr(ip netip.Addr, extra []netip.Prefix) (string, bool) {
	if !ip.IsValid() {
		return "invalid address", true
	}
	if ip.Zone() != "" {
		return "address with a zone", true
	}
	ip = ip.Unmap()
	if reason, ok := refusedPlain(ip, extra); ok {
		return reason, true
	}
	if v4, form, ok := embeddedV4(ip); ok {
		if reason, ok := refusedPlain(v4, extra); ok {
			return form + " of " + reason, true
		}
	}
	return "", false
}

func refusedPlain(ip netip.Addr, extra []netip.Prefix) (string, bool) {
	for _, r := range RefusedRanges {
		if !r.Translator && r.Prefix.Contains(ip) {
			return r.Prefix.String() + " " + r.Reason, true
		}
	}
	for _, p := range extra {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return "refused range " + p.String(), true
		}
	}
	return "", false
}

// embeddedV4 extracts the IPv4 address a NAT64 or 6to4 address carries;
// these are routable, so the address inside decides.
func embeddedV4(ip netip.Addr) (netip.Addr, string, bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64 form", true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4 form", true
	}
	return netip.Addr{}, "", false
}

// refusedCIDR says why a guest may not be given direct egress to p, or "":
// p contains or maps onto a refused address (explicit ranges aside), or
// overlaps the pool bottle subnets come from.
func refusedCIDR(p, pool netip.Prefix) string {
	if p.Bits() == 0 {
		return "is a default route: it would open the guest to everything"
	}
	if p.Addr().Is6() && p.Overlaps(mappedV4) {
		if p.Bits() <= mappedV4.Bits() {
			return "contains ::ffff:0.0.0.0/96, the IPv4-mapped spelling of all of IPv4: it would open the guest to everything"
		}
		// An IPv4-mapped range is its IPv4 range.
		v4 := unmapPrefix(p)
		if why := refusedCIDR(v4, pool); why != "" {
			return fmt.Sprintf("is the IPv4-mapped spelling of %s, which %s", v4, why)
		}
		return ""
	}
	for _, r := range RefusedRanges {
		if p.Overlaps(r.Prefix) && !(r.Explicit && r.Prefix.Contains(p.Addr()) && r.Prefix.Bits() <= p.Bits()) {
			return fmt.Sprintf("overlaps %s, which %s", r.Prefix, r.Reason)
		}
	}
	if p.Overlaps(pool) {
		return fmt.Sprintf("overlaps %s, the range bottle subnets are allocated from: it would open this bottle to other bottles", pool)
	}
	return ""
}

// refusedLiteral says why spec.egress.allow may not name the address ip,
// or "": a rule naming an address lets the gate dial it whatever range it
// is in, so the ranges no guest may reach (all but the explicit ones, a
// team's own private networks) and the pool are refused here, in every
// spelling: IPv4-mapped, and the NAT64 and 6to4 forms judged by the IPv4
// address inside.
func refusedLiteral(ip netip.Addr, pool netip.Prefix) string {
	ip = ip.Unmap()
	if v4, form, ok := embeddedV4(ip); ok {
		if why := refusedLiteral(v4, pool); why != "" {
			return fmt.Sprintf("is the %s of %s, which %s", form, v4, why)
		}
		return ""
	}
	for _, r := range RefusedRanges {
		if !r.Explicit && !r.Translator && r.Prefix.Contains(ip) {
			return fmt.Sprintf("is in %s, which %s", r.Prefix, r.Reason)
		}
	}
	if pool.Contains(ip) {
		return fmt.Sprintf("is in %s, the range bottle subnets are allocated from: it would open this bottle to other bottles", pool)
	}
	return ""
}
