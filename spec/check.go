package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validName reports whether n is a valid metadata.name.
func validName(n string) bool {
	return len(n) <= 40 && nameRE.MatchString(n) && !strings.Contains(n, "--")
}

// checker collects semantic problems and warnings, located in the file.
type checker struct {
	file     string
	loc      *locator
	problems []Problem
	warnings []Problem
}

func (c *checker) add(p path, format string, args ...any) {
	c.addAt(p, false, format, args...)
}

// addAt points at the key of p's last segment instead of its value when
// key is set: for a problem with a map key, such as a reserved env name.
func (c *checker) addAt(p path, key bool, format string, args ...any) {
	c.problems = append(c.problems, c.problem(p, key, format, args...))
}

// warn notes something a reviewer should look at twice that does not make
// the spec invalid.
func (c *checker) warn(p path, format string, args ...any) {
	c.warnings = append(c.warnings, c.problem(p, false, format, args...))
}

func (c *checker) problem(p path, key bool, format string, args ...any) Problem {
	line, col := c.loc.locate(p, key)
	return Problem{File: c.file, Line: line, Column: col, Field: p.String(), Message: fmt.Sprintf(format, args...)}
}

// check applies the rules a JSON Schema cannot express. It returns the
// problems and keeps the warnings in b.
func check(file string, loc *locator, b *Bottle, opts Options) []Problem {
	c := &checker{file: file, loc: loc}
	s := &b.Spec
	sp := path{"spec"}
	defer func() { b.warnings = c.warnings }()

	// A missing image is the schema's to report ("required"); saying it is
	// also not a valid reference would only be noise.
	if _, err := reference.ParseNormalizedNamed(s.Image); s.Image != "" && err != nil {
		c.add(sp.with("image"), "%q is not a valid image reference (%v); use a name like ghcr.io/acme/agent:1.4 or a local image such as agent:dev", s.Image, err)
	}

	for _, k := range sortedKeys(s.Env) {
		if IsReservedEnv(k) {
			c.addAt(sp.with("env").with(k), true, "is set by bottle-reconcile itself (it points the guest at its bundle); remove it")
		}
	}
	for i, k := range s.EnvFromHost {
		switch {
		case IsReservedEnv(k):
			c.add(sp.with("envFromHost").with(i), "%s is set by bottle-reconcile itself (it points the guest at its bundle); remove it", k)
		case hasKey(s.Env, k):
			c.add(sp.with("envFromHost").with(i), "%s is also set in spec.env; keep it in one place", k)
		case !envKeyRE.MatchString(k):
			c.add(sp.with("envFromHost").with(i), "%q is not a valid environment variable name", k)
		case s.Guest == GuestSmolvm && SmolvmHostEnv(k):
			c.add(sp.with("envFromHost").with(i), "%s would change how smolvm itself runs, so its secret value could reach a smolvm guest only on smolvm's command line; set it in spec.env if it is not secret, or in the image", k)
		}
	}

	own := c.checkOwnSubnet(s, opts)
	egressOn := s.Runs(DaemonEgress) || s.Runs(DaemonDNS)
	if len(s.Egress.Allow) > 0 && !egressOn {
		c.add(sp.with("egress").with("allow"), "has no effect because spec.daemons runs neither egress nor dns; add egress to spec.daemons or remove the list")
	}
	seenRule := map[string]int{}
	for i, a := range s.Egress.Allow {
		p := sp.with("egress").with("allow").with(i)
		r, err := ParseHostRule(a)
		if err != nil {
			c.add(p, "%q: %v", a, err)
			continue
		}
		if r.IP.IsValid() {
			if why := refusedRuleAddr(r.IP, own, opts.pool()); why != "" {
				c.add(p, "%q names %s, which %s; a rule naming an address lets the gate dial it: remove it", a, r.IP, why)
				continue
			}
		}
		if r.Wildcard {
			refused, warning := wildcardScope(r.Host)
			if refused != "" {
				c.add(p, "%q %s", a, refused)
				continue
			}
			if warning != "" {
				c.warn(p, "%q %s", a, warning)
			}
		}
		canon := r.String()
		if j, dup := seenRule[canon]; dup {
			c.add(p, "%q is the same rule as spec.egress.allow[%d] once normalised (%s); keep one", a, j, canon)
			continue
		}
		seenRule[canon] = i
		s.Egress.Allow[i] = canon
	}

	for i, a := range s.AllowCIDRs {
		p := sp.with("allowCIDRs").with(i)
		pfx, err := parseCIDR(a)
		if err != nil {
			c.add(p, "%v", err)
			continue
		}
		if why := refusedCIDR(pfx, opts.pool()); why != "" {
			c.add(p, "%s %s; remove it", pfx, why)
			continue
		}
		if own.IsValid() && unmapPrefix(pfx).Overlaps(own) {
			c.add(p, "%s overlaps %s, this bottle's own subnet (spec.network.subnet), whose gateway is the host; the bundle is always reachable without it: remove it", pfx, own)
			continue
		}
		s.AllowCIDRs[i] = pfx.String()
	}

	if s.Workspace != nil {
		c.checkWorkspace(file, s.Workspace)
	}
	return c.problems
}

// checkOwnSubnet checks spec.network.subnet and returns it, or an invalid
// prefix when it is not set or not valid.
func (c *checker) checkOwnSubnet(s *Spec, opts Options) netip.Prefix {
	if s.Network.Subnet == "" {
		return netip.Prefix{}
	}
	p := path{"spec", "network", "subnet"}
	pfx, err := checkSubnet(s.Network.Subnet)
	if err != nil {
		c.add(p, "%v", err)
		return netip.Prefix{}
	}
	if pool := opts.pool(); !opts.AllowSubnetOutsidePool && !within(pfx, pool) {
		// Bundles refuse the pool, not the host's other ranges: a bottle
		// outside it is not kept from other bottles' egress gates.
		c.add(p, "%s is outside the subnet pool %s (--subnet-pool), which every bottle's egress gate refuses; a subnet outside it is not kept from other bottles: move it into %s, or run the reconciler with --allow-subnet-outside-pool", pfx, pool, pool)
		return netip.Prefix{}
	}
	s.Network.Subnet = pfx.String()
	return pfx
}

// refusedRuleAddr says why an egress.allow rule may not name ip, or "".
func refusedRuleAddr(ip netip.Addr, own, pool netip.Prefix) string {
	if why := refusedLiteral(ip, pool); why != "" {
		return why
	}
	if own.IsValid() && own.Contains(ip.Unmap()) {
		return fmt.Sprintf("is in %s, this bottle's own subnet (spec.network.subnet), whose gateway is the host", own)
	}
	return ""
}

// within reports whether p lies wholly inside outer.
func within(p, outer netip.Prefix) bool {
	return outer.Bits() <= p.Bits() && outer.Contains(p.Addr())
}

// parseCIDR accepts a CIDR or a bare address (taken as /32 or /128, as smolvm
// does) and refuses host bits, which usually mean a typo in the mask.
func parseCIDR(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone; remove it", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR; write it like 198.51.100.0/24 or 2001:db8::/32", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// checkSubnet checks a pinned bottle subnet: IPv4, a network address, with
// room for the network address, gateway, bundle, guest and broadcast.
func checkSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not a CIDR; write an IPv4 subnet like 10.213.4.0/29", s)
	}
	if !p.Addr().Is4() {
		return p, fmt.Errorf("%s is IPv6; bottle networks are IPv4: use a /29 or larger IPv4 subnet", p)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	if p.Bits() > 29 {
		return p, fmt.Errorf("%s is too small: a bottle needs the network address, a gateway, the bundle, the guest and the broadcast address; use a /29 or larger", p)
	}
	for _, r := range RefusedRanges {
		if !r.Explicit && p.Overlaps(r.Prefix) {
			return p, fmt.Errorf("%s overlaps %s, which %s; pick a private range such as 10.213.4.0/29", p, r.Prefix, r.Reason)
		}
	}
	return p, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
