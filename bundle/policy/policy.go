// Package policy decides what a bottle's guest may reach: it matches
// targets against the egress allowlist (spec.HostRule) and refuses
// addresses no guest should ever dial, whatever name led there.
package policy

import (
	"fmt"
	"net/netip"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Policy is an egress allowlist plus the ranges refused on top of the
// built-in ones. It is immutable and safe for concurrent use.
type Policy struct {
	rules  []spec.HostRule
	refuse []netip.Prefix
}

// New parses allow (spec.HostRule strings) and keeps refuse, the extra
// ranges never to dial, e.g. the pool bottle subnets come from.
func New(allow []string, refuse []netip.Prefix) (*Policy, error) {
	p := &Policy{refuse: append([]netip.Prefix(nil), refuse...)}
	for _, s := range allow {
		r, err := spec.ParseHostRule(s)
		if err != nil {
			return nil, fmt.Errorf("policy: parse allow rule %q: %w", s, err)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// AllowTarget reports whether a rule admits t (host and port) and returns
// that rule's canonical spelling. An address literal is admitted only by a
// rule naming that address.
func (p *Policy) AllowTarget(t Target) (string, bool) {
	for _, r := range p.rules {
		if !r.AllowsPort(t.Port) {
			continue
		}
		if t.IP.IsValid() && r.MatchesIP(t.IP) || t.Name != "" && r.MatchesHost(t.Name) {
			return r.String(), true
		}
	}
	return "", false
}

// AllowName reports whether any rule admits the normalised name on some
// port; the resolver answers exactly these names.
func (p *Policy) AllowName(name string) bool {
	for _, r := range p.rules {
		if r.MatchesHost(name) {
			return true
		}
	}
	return false
}

// DefaultMaxWildcardBytes bounds what WildcardPrefix may measure before the
// daemons refuse a name: one label's worth, room for any real host name
// under a wildcard and little for tunnelled data.
const DefaultMaxWildcardBytes = 63

// WildcardPrefix returns how many bytes of the normalised name a wildcard
// rule admits before its suffix (3 for a.b.example.com under
// *.example.com: "a.b"), the fewest over every wildcard that matches, and
// that rule's spelling. It returns 0 and "" when a rule names name exactly
// or no wildcard admits it. Those bytes are the guest's to choose, so they
// are what a DNS tunnel through the rule carries.
func (p *Policy) WildcardPrefix(name string) (int, string) {
	n, rule := 0, ""
	for _, r := range p.rules {
		if r.IP.IsValid() {
			continue
		}
		if !r.Wildcard && r.Host == name {
			return 0, ""
		}
		if r.MatchesHost(name) {
			if k := len(name) - len(r.Host) - 1; rule == "" || k < n {
				n, rule = k, "*."+r.Host
			}
		}
	}
	return n, rule
}

// CheckDial returns an error unless the egress gate may dial ip:port: an
// address in a refused range passes only when a rule names that address
// literal and admits the port.
func (p *Policy) CheckDial(ip netip.Addr, port uint16) error {
	reason, refused := Refused(ip, p.refuse)
	if !refused {
		return nil
	}
	if _, ok := p.AllowTarget(Target{IP: ip.Unmap(), Port: port}); ok {
		return nil
	}
	return fmt.Errorf("address %s refused: %s", ip, reason)
}

// CheckAnswer returns an error when a DNS answer points at ip in a refused
// range that no rule names as a literal (any port): such an answer is a
// rebinding attempt.
func (p *Policy) CheckAnswer(ip netip.Addr) error {
	reason, refused := Refused(ip, p.refuse)
	if !refused {
		return nil
	}
	for _, r := range p.rules {
		if r.MatchesIP(ip) {
			return nil
		}
	}
	return fmt.Errorf("address %s refused: %s", ip, reason)
}
