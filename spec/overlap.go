package spec

import (
	"fmt"
	"net/netip"
)

// bottleOverlaps finds allowCIDRs that reach into the subnet another bottle
// pins: a direct path from one bottle into another's network. Each such
// bottle is taken out of bottles (the ones left are returned), held as it
// is, and its problem points at the entry.
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
		for i, c := range b.Spec.AllowCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				continue // the per-file check reported it
			}
			p = unmapPrefix(p)
			for _, o := range pins {
				if o.name == b.Metadata.Name || !p.Overlaps(o.subnet) {
					continue
				}
				doc := b.doc
				if doc == nil {
					doc = docOf(b.Source)
				}
				line, col := locate(doc, path{"spec", "allowCIDRs", i}, false)
				r.Problems = append(r.Problems, Problem{
					File: b.Source, Line: line, Column: col, Field: fmt.Sprintf("spec.allowCIDRs[%d]", i),
					Message: fmt.Sprintf("%s overlaps %s, the subnet bottle %q pins (%s): it would open this bottle to that one; remove it", c, o.subnet, o.name, o.file),
				})
				bad = true
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
