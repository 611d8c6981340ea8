package policy

import (
	"net/netip"
)

type refusedRange struct {
	prefix netip.Prefix
	reason string
}

// builtinRefused are ranges no egress may reach whatever the allowlist
// says, unless a rule names the address literal: the bundle's own host and
// neighbours, cloud metadata, and addresses that are not unicast at all.
var builtinRefused = []refusedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified or this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	// Benchmarking space, also used for fake-IP DNS by some host proxies.
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	// Reserved space including the limited broadcast address.
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	// Deprecated IPv4-compatible and SIIT forms: never legitimate targets,
	// and each could smuggle an IPv4 address past a v4-only check.
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated IPv6 (SIIT)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	// Teredo tunnels to an arbitrary, obfuscated IPv4 client address.
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (ULA)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// Refused reports whether ip lies in a built-in refused range or in one of
// extra, looking through the IPv6 forms that embed an IPv4 address
// (IPv4-mapped, NAT64, 6to4). The reason names the range. An invalid or
// zoned address is refused.
func Refused(ip netip.Addr, extra []netip.Prefix) (string, bool) {
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
	for _, r := range builtinRefused {
		if r.prefix.Contains(ip) {
			return r.reason, true
		}
	}
	for _, p := range extra {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return "refused range " + p.String(), true
		}
	}
	return "", false
}

// embeddedV4 extracts the IPv4 address carried in a NAT64 or 6to4 address;
// these are routable, so the address inside decides.
func embeddedV4(ip netip.Addr) (netip.Addr, string, bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64 form", true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4 form", true
	}
	return netip.Addr{}, "", false
}
