package probe

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Expectations of a check.
const (
	Blocked = "blocked" // the path must not work: no data may come back
	Allowed = "allowed" // the path must work (a control: proves the guest is on the network at all)
)

// Verdicts.
const (
	Pass = "pass"
	Fail = "fail"
)

// Kinds of check the runner knows.
const (
	KindHTTP   = "http"      // direct TCP to Addr, a plain GET; reached when Token (or, without one, any byte) comes back
	KindTCP    = "tcp"       // direct TCP to Addr; reached when the handshake completes (targets with no canary)
	KindProxy  = "proxy"     // through the proxy at Addr: CONNECT Target, or GET of the absolute URI Target
	KindScan   = "scan"      // TCP connect scan of every port of Addr (or ScanFrom-ScanTo); reached when a port outside Ports is open
	KindDNS    = "dns"       // one query for Query to Addr over Net; see DNSWant
	KindUDP    = "udp"       // one datagram to Addr; reached when Token comes back
	KindICMP   = "icmp"      // echo request to Addr; reached on a reply
	KindRoute  = "route"     // a UDP connect() to Addr, which sends nothing; reached when the kernel has a route
	KindIPv6   = "ipv6-addr" // reached when the guest holds a global or unique-local IPv6 address
	KindFiles  = "files"     // reached when any of Paths exists
	KindMounts = "mounts"    // reached when a host filesystem is mounted (per /proc/self/mountinfo) anywhere but Paths
	// KindWorkspace is reached when Paths[0] is a mount point, read-only
	// if ReadOnly and writable if not (per /proc/self/mountinfo).
	KindWorkspace = "workspace"
)

// DefaultResolver as the Addr of a dns check means the guest's own resolver,
// the first nameserver of its /etc/resolv.conf.
const DefaultResolver = "default"

// What a dns check counts as reached.
const (
	DNSAnswer = "answer" // any answer record (exfiltration: a name that should not resolve did)
	DNSReply  = "reply"  // any reply at all, whatever its code (control: the resolver is reachable)
)

// Plan is what the runner carries out inside the guest.
type Plan struct {
	Checks []Check `json:"checks"`
	// RemoveSelf makes the runner delete its own binary when it is done,
	// or the directory it was installed as with its loader and libraries.
	RemoveSelf bool `json:"removeSelf,omitempty"`
}

// Check is one attempt. Which fields count depends on Kind.
type Check struct {
	ID      string   `json:"id"`   // "2.3": probe group, then number
	Name    string   `json:"name"` // for humans
	Kind    string   `json:"kind"`
	Expect  string   `json:"expect"` // Blocked or Allowed
	Addr    string   `json:"addr,omitempty"`
	Target  string   `json:"target,omitempty"`  // proxy: CONNECT authority, or an absolute http:// URI
	Method  string   `json:"method,omitempty"`  // proxy: CONNECT or GET
	Host    string   `json:"host,omitempty"`    // the Host header to send, when not the target's
	Token   string   `json:"token,omitempty"`   // canary token that must not come back
	Mark    string   `json:"mark,omitempty"`    // the run's mark, sent to canaries (the request path, a datagram)
	Status  int      `json:"status,omitempty"`  // proxy: the status a blocked request must get (0: any non-2xx)
	Query   string   `json:"query,omitempty"`   // dns: the name asked
	Net     string   `json:"net,omitempty"`     // dns: udp or tcp
	DNSWant string   `json:"dnsWant,omitempty"` // dns: DNSAnswer (default) or DNSReply
	BadIPs  []string `json:"badIPs,omitempty"`  // dns: reached only when an answer holds one of these (rebinding)
	Ports   []int    `json:"ports,omitempty"`   // scan: ports that may be open
	// ScanFrom and ScanTo bound a scan's range; 0 means 1 and 65535.
	ScanFrom int      `json:"scanFrom,omitempty"`
	ScanTo   int      `json:"scanTo,omitempty"`
	Paths    []string `json:"paths,omitempty"`    // files; mounts: the workspace allowed; workspace: its mount point
	ReadOnly bool     `json:"readOnly,omitempty"` // workspace: it must be mounted read-only
	// TimeoutMillis bounds one attempt; 0 means the kind's default.
	TimeoutMillis int `json:"timeoutMillis,omitempty"`
}

// Observation is what the runner saw for one check, without a verdict.
type Observation struct {
	ID string `json:"id"`
	// Reached says the path worked: data came back, a tunnel opened, a
	// port answered.
	Reached  bool   `json:"reached"`
	Observed string `json:"observed"` // short: "refused", "403 Forbidden", "TOKEN RETURNED"
	Detail   string `json:"detail,omitempty"`
	Millis   int64  `json:"millis"`
}

// Output is what probe-run prints.
type Output struct {
	Observations []Observation `json:"observations"`
	UID          int           `json:"uid"`
}

// Result is one judged probe.
type Result struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Expected string `json:"expected"`
	Observed string `json:"observed"`
	Verdict  string `json:"verdict"`
	Millis   int64  `json:"millis"`
	Detail   string `json:"detail,omitempty"`
	// Slow marks a block that held only by a timeout: nothing came back,
	// but nothing refused either. It still passes; the table shows it, as
	// a block should be a refusal where the mechanism allows.
	Slow bool `json:"slow,omitempty"`
}

// slow says whether an observation of a blocked path is a wait that ran out
// rather than a refusal. The words are the runner's own (describe, the
// icmp and dns checks).
func slow(o Observation) bool {
	return !o.Reached && (strings.Contains(o.Observed, "timeout") || strings.HasSuffix(o.Observed, "no reply"))
}

// Judge pairs each check with its observation. A check the runner did not
// report fails: silence is not a block.
func Judge(p Plan, obs []Observation) []Result {
	byID := make(map[string]Observation, len(obs))
	for _, o := range obs {
		byID[o.ID] = o
	}
	out := make([]Result, 0, len(p.Checks))
	for _, c := range p.Checks {
		r := Result{ID: c.ID, Name: c.Name, Expected: c.Expect}
		o, ok := byID[c.ID]
		switch {
		case !ok:
			r.Observed, r.Verdict, r.Detail = "no result", Fail, "the runner reported nothing for this check"
		default:
			r.Observed, r.Millis, r.Detail = o.Observed, o.Millis, o.Detail
			r.Verdict = Fail
			if o.Reached == (c.Expect == Allowed) {
				r.Verdict = Pass
				r.Slow = c.Expect == Blocked && slow(o)
			}
		}
		out = append(out, r)
	}
	sortResults(out)
	return out
}

// Passed reports whether every result passed (and there is at least one).
func Passed(rs []Result) bool {
	for _, r := range rs {
		if r.Verdict != Pass {
			return false
		}
	}
	return len(rs) > 0
}

// sortResults orders by ID numerically ("2.10" after "2.9").
func sortResults(rs []Result) {
	key := func(id string) []int {
		var k []int
		for _, p := range strings.Split(id, ".") {
			n, err := strconv.Atoi(p)
			if err != nil {
				n = 1 << 30
			}
			k = append(k, n)
		}
		return k
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := key(rs[i].ID), key(rs[j].ID)
		for n := 0; n < len(a) && n < len(b); n++ {
			if a[n] != b[n] {
				return a[n] < b[n]
			}
		}
		return len(a) < len(b)
	})
}

// fail marks a result failed with a reason (host-side checks, e.g. a DNS
// canary that saw the nonce).
func (r *Result) fail(observed, detail string) {
	r.Verdict = Fail
	r.Observed = observed
	if r.Detail != "" {
		detail = fmt.Sprintf("%s; %s", detail, r.Detail)
	}
	r.Detail = detail
}
