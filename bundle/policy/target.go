package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Target is where a client asks to go: a normalised DNS name or an address
// literal, and a port.
type Target struct {
	// Name is lowercase punycode without a trailing dot; empty for literals.
	Name string
	// IP is set, unmapped, when the client named an address literal.
	IP   netip.Addr
	Port uint16
}

// String returns host:port with IPv6 literals in brackets.
func (t Target) String() string {
	host := t.Name
	if t.IP.IsValid() {
		host = t.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(t.Port)))
}

// Same reports whether t and o name the same host and port.
func (t Target) Same(o Target) bool {
	return t.Name == o.Name && t.IP == o.IP && t.Port == o.Port
}

// ParseTarget parses an authority ("host", "host:port", "[v6]:port"). When
// the port is missing defaultPort is used; a defaultPort of 0 makes the
// port mandatory, as for CONNECT.
func ParseTarget(authority string, defaultPort uint16) (Target, error) {
	var t Target
	if authority == "" {
		return t, errors.New("empty target")
	}
	host, portStr := authority, ""
	if h, p, err := net.SplitHostPort(authority); err == nil {
		host, portStr = h, p
		if p == "" {
			return t, fmt.Errorf("target %q: empty port", authority)
		}
	} else if strings.HasPrefix(authority, "[") && strings.HasSuffix(authority, "]") {
		host = authority[1 : len(authority)-1]
	} else if strings.Contains(authority, ":") {
		// Unbracketed IPv6 or garbage: an authority must bracket IPv6.
		return t, fmt.Errorf("target %q: %w", authority, err)
	}
	switch {
	case portStr != "":
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || n == 0 {
			return t, fmt.Errorf("target %q: bad port %q", authority, portStr)
		}
		t.Port = uint16(n)
	case defaultPort == 0:
		return t, fmt.Errorf("target %q: port required", authority)
	default:
		t.Port = defaultPort
	}
	name, ip, err := ParseHost(host)
	if err != nil {
		return t, fmt.Errorf("target %q: %w", authority, err)
	}
	t.Name, t.IP = name, ip
	return t, nil
}

// ParseHost classifies host as an address literal (returned unmapped) or a
// DNS name (returned normalised). Numeric spellings that some resolvers
// read as addresses ("2130706433", "0177.0.0.1", "0x7f.1") are errors:
// netip rejects them as addresses and spec.NormalizeHost as names.
func ParseHost(host string) (string, netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", netip.Addr{}, errors.New("address with a zone")
		}
		return "", ip.Unmap(), nil
	}
	name, err := spec.NormalizeHost(host)
	if err != nil {
		return "", netip.Addr{}, err
	}
	return name, netip.Addr{}, nil
}
