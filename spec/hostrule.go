package spec

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// HostRule is one entry of spec.egress.allow, parsed and normalised.
type HostRule struct {
	// Host is the lowercase ASCII (punycode) name without a trailing dot. For
	// a wildcard rule it is the suffix, without the leading "*.".
	Host     string
	Wildcard bool
	// IP is set when the rule names an address literal instead of a host.
	IP netip.Addr
	// Port is the only port allowed; 0 allows 80 and 443.
	Port uint16
}

// ParseHostRule parses "host", "*.suffix", "host:port", "1.2.3.4[:port]" or
// "[2001:db8::1]:port" and normalises it: lowercase, punycode, no trailing dot.
func ParseHostRule(s string) (HostRule, error) {
	var r HostRule
	if s == "" {
		return r, errors.New("empty host")
	}
	if strings.TrimSpace(s) != s {
		return r, errors.New("surrounding whitespace")
	}
	if strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@") {
		return r, errors.New("a host name is expected, not a URL; write only the host, e.g. api.example.com or api.example.com:443")
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			// "[::1]" without a port.
			if strings.HasSuffix(s, "]") {
				h, p = s[1:len(s)-1], ""
			} else {
				return r, fmt.Errorf("bad bracketed address: %v", err)
			}
		}
		host, port = h, p
	case strings.Count(s, ":") == 1:
		i := strings.LastIndexByte(s, ':')
		host, port = s[:i], s[i+1:]
		if port == "" {
			return r, errors.New("empty port after ':'")
		}
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return r, fmt.Errorf("port %q must be a number from 1 to 65535", port)
		}
		r.Port = uint16(n)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return r, errors.New("an address with a zone is not allowed")
		}
		r.IP = ip.Unmap()
		return r, nil
	}
	if strings.HasPrefix(host, "*.") {
		r.Wildcard = true
		host = host[2:]
	}
	if strings.Contains(host, "*") {
		return r, errors.New("a wildcard is only allowed as a leading \"*.\", e.g. *.example.com")
	}
	norm, err := NormalizeHost(host)
	if err != nil {
		return r, err
	}
	if r.Wildcard && !strings.Contains(norm, ".") {
		return r, fmt.Errorf("wildcard over a top-level domain (*.%s) is too broad; name a registered domain, e.g. *.example.%s", norm, norm)
	}
	r.Host = norm
	return r, nil
}

// NormalizeHost lowercases a DNS name, converts it to punycode, strips one
// trailing dot and checks its syntax. It refuses names that are really
// numeric addresses in disguise ("2130706433", "0177.0.0.1").
func NormalizeHost(h string) (string, error) {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", errors.New("empty host name")
	}
	ascii := strings.ToLower(h)
	if !isASCII(h) {
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("invalid host name %q: %v", h, err)
		}
		ascii = strings.ToLower(a)
	}
	if len(ascii) > 253 {
		return "", fmt.Errorf("host name %q is longer than 253 characters", h)
	}
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		if l == "" {
			return "", fmt.Errorf("host name %q has an empty label", h)
		}
		if len(l) > 63 {
			return "", fmt.Errorf("host name %q has a label longer than 63 characters", h)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("host name %q has a label that starts or ends with '-'", h)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("host name %q contains %q; only letters, digits, '-' and '.' are allowed", h, c)
			}
		}
	}
	if isNumeric(labels[len(labels)-1]) {
		return "", fmt.Errorf("%q is a numeric address, not a host name; write an IP address in plain dotted form", h)
	}
	return ascii, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isNumeric(s string) bool {
	if strings.HasPrefix(s, "0x") {
		return true
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// String returns the canonical spelling of the rule.
func (r HostRule) String() string {
	var host string
	switch {
	case r.IP.IsValid():
		host = r.IP.String()
		if r.IP.Is6() && r.Port != 0 {
			host = "[" + host + "]"
		}
	case r.Wildcard:
		host = "*." + r.Host
	default:
		host = r.Host
	}
	if r.Port != 0 {
		return host + ":" + strconv.Itoa(int(r.Port))
	}
	return host
}

// AllowsPort reports whether the rule admits port.
func (r HostRule) AllowsPort(port uint16) bool {
	if r.Port == 0 {
		return port == 80 || port == 443
	}
	return port == r.Port
}

// MatchesHost reports whether the rule names host, which must already be
// normalised with NormalizeHost. A wildcard matches on label boundaries only
// and never the bare suffix: *.example.com matches a.example.com, not
// example.com nor badexample.com.
func (r HostRule) MatchesHost(host string) bool {
	if r.IP.IsValid() {
		return false
	}
	if r.Wildcard {
		return strings.HasSuffix(host, "."+r.Host)
	}
	return host == r.Host
}

// MatchesIP reports whether the rule names the address literal ip.
func (r HostRule) MatchesIP(ip netip.Addr) bool {
	return r.IP.IsValid() && r.IP == ip.Unmap()
}
