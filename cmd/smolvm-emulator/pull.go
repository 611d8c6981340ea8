package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// The first start of a machine with a registry image pulls it inside the
// guest, through the machine's egress gateway (vm_common.rs ~1455-1519), so
// the machine's own allow-list decides whether the pull can leave. smolvm
// widens that list for the pull only when the machine has --allow-host
// (agent/launcher.rs 373-391); with only --allow-cidr the registry is
// unreachable and the start fails. The emulator does no pull: it decides
// from the record whether a real one could get out.

// proxyEnv is the order proxy_opts.rs (26-44) reads smolvm's own environment in.
var proxyEnv = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"}

// firstPull fails the way real start does when the first-start pull of r's
// image cannot reach its registry.
func (a *app) firstPull(r *Record, p parsedArgs) error {
	if r.InitCompleted || r.Image == nil || isLocalRef(*r.Image) || r.From != "" {
		return nil
	}
	img := *r.Image
	fmt.Fprintf(a.stderr, "Pulling %s...\n", img)
	if a.pullCanLeave(r, a.pullProxy(p)) {
		fmt.Fprintf(a.stderr, "Pulling image %s... done.\n", img)
		return nil
	}
	// "agent operation failed: pull image: crane manifest failed: <crane's
	// stderr>" is smolvm's (agent/client.rs 1084, smolvm-agent storage.rs
	// run_crane_once). The crane part is not from the source: the gateway
	// drops the SYN (tcp_relay.rs 283-296), so Go's dialer times out; the
	// real text names the resolved IP where this one names the host.
	host := registryHost(img)
	return errorf("agent operation failed: pull image: crane manifest failed: Error: fetching manifest %s: Get \"https://%s/v2/\": dial tcp %s:443: i/o timeout", img, host, host)
}

// pullCanLeave reports whether the machine's egress policy lets a pull out.
func (a *app) pullCanLeave(r *Record, proxy string) bool {
	if len(r.AllowedCIDRs) == 0 || len(r.DNSHosts) > 0 {
		// No policy (plain --net), or one smolvm widens for the pull.
		return true
	}
	var via netip.Addr
	if u, err := url.Parse(proxy); err == nil && proxy != "" {
		via, _ = netip.ParseAddr(u.Hostname())
	}
	for _, c := range r.AllowedCIDRs {
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			continue
		}
		// The registry's address is unknown here: only an allow-all
		// prefix surely covers it. A proxy is reachable when listed.
		if pfx.Bits() == 0 || (via.IsValid() && pfx.Contains(via.Unmap())) {
			return true
		}
	}
	return false
}

// pullProxy is the pull's proxy: --proxy, else smolvm's own environment.
func (a *app) pullProxy(p parsedArgs) string {
	if v, ok := p.one("proxy"); ok {
		return v
	}
	for _, k := range proxyEnv {
		if v := strings.TrimSpace(a.getenv(k)); v != "" {
			return v
		}
	}
	return ""
}

// registryHost is the host a reference is pulled from, as crane names it.
func registryHost(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "index.docker.io"
}
