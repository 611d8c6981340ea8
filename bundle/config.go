// Package bundle is the program that runs inside a bottle's sidecar bundle
// container: the daemons a spec selects (an egress gate and a filtering DNS
// resolver) and a control endpoint on 127.0.0.1 for health.
package bundle

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// Fixed ports and addresses inside a bundle.
const (
	// ProxyPort is the egress gate's guest-facing port on the bundle address.
	ProxyPort = 3128
	// DNSPort is the resolver's guest-facing port (UDP and TCP).
	DNSPort = 53
	// ControlAddr serves /healthz. It is bound to loopback inside the bundle
	// only, so no guest can reach it; the bundle's watchdog asks it, and so
	// does "bundle health" run by docker exec.
	ControlAddr = "127.0.0.1:9099"
	// ConfigEnv carries the JSON Config into the bundle container.
	ConfigEnv = "BOTTLE_BUNDLE_CONFIG"
)

// Config is a bundle's whole configuration.
type Config struct {
	Bottle  string   `json:"bottle"`
	Daemons []string `json:"daemons"`
	// Allow holds the canonical egress rules (spec.HostRule strings).
	Allow []string `json:"allow,omitempty"`
	// Listen is the bundle's address on the bottle network: the only address
	// guest-facing daemons bind to.
	Listen netip.Addr `json:"listen"`
	// Refuse lists ranges the egress gate must never dial on top of the
	// built-in ones, e.g. the pool bottle subnets come from.
	Refuse []netip.Prefix `json:"refuse,omitempty"`
	// HostAddrs are the host's own addresses outside the refused ranges
	// (its public ones), which the bundle cannot list from its own network
	// namespace: the reconciler reads them on the host and passes them here,
	// and both daemons refuse them like Refuse, so no allowed name or
	// literal leads to a service on the host.
	HostAddrs []netip.Addr `json:"hostAddrs,omitempty"`
	// Upstream is the DNS server the resolver forwards allowed names to, as
	// host:port. Empty means the first nameserver of /etc/resolv.conf.
	Upstream string `json:"upstream,omitempty"`
	// DNSQueryRate (queries a second) and DNSQueryBurst bound the queries
	// the resolver answers, and MaxWildcardBytes the part of a name a
	// wildcard rule admits (in both daemons): what a DNS tunnel through an
	// allowed wildcard can carry. Zero means the daemons' defaults.
	DNSQueryRate     float64 `json:"dnsQueryRate,omitempty"`
	DNSQueryBurst    int     `json:"dnsQueryBurst,omitempty"`
	MaxWildcardBytes int     `json:"maxWildcardBytes,omitempty"`
}

// Encode returns the config as the value of ConfigEnv.
func (c Config) Encode() (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("bundle: encode config: %w", err)
	}
	return string(b), nil
}

// DecodeConfig parses the value of ConfigEnv.
func DecodeConfig(s string) (Config, error) {
	var c Config
	if s == "" {
		return c, fmt.Errorf("bundle: %s is not set", ConfigEnv)
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("bundle: decode %s: %w", ConfigEnv, err)
	}
	return c, nil
}
