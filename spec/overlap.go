package spec

import (
	"fmt"
	"net/netip"
)

// bottleOverlaps finds allowCIDRs and egress.allow address literals that
// reach into the subnet another bottle pins: a path from one bottle into
// another's network. Each such bottle is taken out of bottles (the ones
// left are returned), held as it is, and its problem points at the entry.
func bottleOverlaps(r *Result, bottles []*Bottle) []*Bottle {
	type pin struct {
		name   string
		file   string
		subnet netip.Prefix
	}
	var pins []pin
	for _, b := range bottles {
		if p, err := netip.ParsePrefix(b.Spec.Network.Subnet); err == nil {
			pins = append(pins, pin{b.Metadata.Name, b.Source, p})
		}
	}
	if len(pins) == 0 {
		return bottles
	}
	var kept []*Bottle
	for _, b := range bottles {
		bad := false
		reach := func(at path, entry, verb string, p netip.Prefix) {
			for _, o := range pins {
				if o.name == b.Metadata.Name || !p.Overlaps(o.subnet) {
					continue
				}
				doc := b.doc
				if doc == nil {
					doc = docOf(b.Source)
				}
				line, col := locate(doc, at, false)
				r.Problems = append(r.Problems, Problem{
					File: b.Source, Line: line, Column: col, Field: at.String(),
					Message: fmt.Sprintf("%s %s %s, the subnet bottle %q pins (%s): it would open this bottle to that one; remove it", entry, verb, o.subnet, o.name, o.file),
				})
				bad = true
			}
		}
		for i, c := range b.Spec.AllowCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil { // else the per-file check reported it
				reach(path{"spec", "allowCIDRs", i}, c, "overlaps", unmapPrefix(p))
			}
		}
		for i, a := range b.Spec.Egress.Allow {
			if rule, err := ParseHostRule(a); err == nil && rule.IP.IsValid() {
				reach(path{"spec", "egress", "allow", i}, a, "is in", netip.PrefixFrom(rule.IP, rule.IP.BitLen()))
			}
		}
		if bad {
			r.Held[b.Metadata.Name] = fmt.Sprintf("%s is invalid", b.Source)
			continue
		}
		kept = append(kept, b)
	}
	return kept
}

// unmapPrefix returns the IPv4 range an IPv4-mapped IPv6 range spells, or p.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is6() && mappedV4.Contains(p.Addr()) && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}
