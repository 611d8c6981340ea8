package probe

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// canaryKey names where a check's traffic would arrive on the host: a
// canary and, for the any-address ones, the address it was sent to.
type canaryKey struct {
	canary string
	addr   netip.Addr // zero for the loopback canary, which has one address
}

func (k canaryKey) String() string {
	port := "loopback canary"
	switch k.canary {
	case CanaryAny:
		port = "canary at " + k.addr.String()
	case CanaryUDP:
		port = "UDP canary"
	}
	return "host " + port
}

// canaryTarget says which host canary a check aims at, if any: by the port
// of its address (direct checks) or of its proxy target.
func canaryTarget(c Check, can Canaries) (canaryKey, bool) {
	hostport := ""
	switch c.Kind {
	case KindHTTP, KindTCP, KindUDP:
		hostport = c.Addr
	case KindProxy:
		hostport = c.Target
		if i := strings.Index(hostport, "://"); i >= 0 {
			hostport, _, _ = strings.Cut(hostport[i+3:], "/")
		}
	default:
		return canaryKey{}, false
	}
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return canaryKey{}, false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return canaryKey{}, false
	}
	ip, _ := netip.ParseAddr(h)
	ip = ip.Unmap()
	switch port := uint16(n); {
	case c.Kind == KindUDP && port == can.UDP:
		// The UDP canary cannot tell which of its addresses was hit.
		return canaryKey{canary: CanaryUDP}, true
	case c.Kind != KindUDP && port == can.Loopback:
		return canaryKey{canary: CanaryLoopback}, true
	case c.Kind != KindUDP && port == can.Any:
		return canaryKey{canary: CanaryAny, addr: ip}, true
	}
	return canaryKey{}, false
}

// Confirm holds the guest's results against what the host canaries saw in
// this run, so a guest that lies cannot pass: when a canary received more
// connections or datagrams than the guest reports reaching it, every check
// aimed there that the guest reports blocked fails ("guest reports blocked,
// but the host canary received a connection"). Traffic nothing in the plan
// aims at fails the run too, in a result of its own. Stale traffic (another
// run's mark) is left out.
func Confirm(p Plan, can Canaries, results []Result, arrivals []Arrival) []Result {
	seen := map[canaryKey]int{}
	for _, a := range arrivals {
		if a.Stale {
			continue
		}
		k := canaryKey{canary: a.Canary}
		if a.Canary == CanaryAny {
			k.addr = a.Local
		}
		seen[k]++
	}
	byID := map[string]int{}
	for i, r := range results {
		byID[r.ID] = i
	}
	targets := map[string]canaryKey{}
	reported := map[canaryKey]int{}
	aimed := map[canaryKey]bool{}
	for _, c := range p.Checks {
		k, ok := canaryTarget(c, can)
		if !ok {
			continue
		}
		targets[c.ID] = k
		aimed[k] = true
		if i, ok := byID[c.ID]; ok && blockedFailed(results[i]) {
			reported[k]++
		}
	}
	for _, c := range p.Checks {
		k, ok := targets[c.ID]
		i, found := byID[c.ID]
		if !ok || !found || c.Expect != Blocked || results[i].Verdict != Pass || seen[k] <= reported[k] {
			continue
		}
		results[i].fail("HOST CANARY REACHED", fmt.Sprintf("guest reports blocked, but the %s received %d connection(s) or datagram(s) in this run", k, seen[k]))
	}
	r := Result{ID: "2.99", Name: "host canaries received only what the guest reports", Expected: Blocked,
		Observed: "nothing unaccounted for", Verdict: Pass}
	var stray []string
	for k, n := range seen {
		if !aimed[k] {
			stray = append(stray, fmt.Sprintf("%s: %d", k, n))
		}
	}
	if len(stray) > 0 {
		sort.Strings(stray)
		r.fail("HOST CANARY REACHED", "the guest reports nothing aimed there, but arrivals came in: "+strings.Join(stray, ", "))
	}
	out := append(results, r)
	sortResults(out)
	return out
}

// blockedFailed says whether a blocked check's result is the guest saying
// the path worked (or saying nothing): a failure the guest owns up to.
func blockedFailed(r Result) bool {
	return r.Expected == Blocked && r.Verdict == Fail
}
