package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Options configure one probe run against a live bottle.
type Options struct {
	// Network and Bundle are the network and bundle drivers, Guest the
	// driver of the spec's guest kind: the probe finds the bottle in their
	// observation and runs in its guest through Guest.
	Network, Bundle Observer
	Guest           GuestDriver
	Instance        string
	Bottle          string
	Spec            spec.Spec // the bottle's spec, defaults applied: it decides the expectations
	// Binary is the bottle-reconcile binary copied into the guest; a
	// dynamically linked one goes with its loader and libraries.
	Binary string
	// Timeout bounds the runner inside the guest; default 3 minutes.
	Timeout time.Duration

	// Test hooks: a metadata stand-in's token, DNS names the canary
	// upstream answers, and a way to ask it whether it saw the nonce.
	MetadataToken string
	DNSControl    string
	Rebind        []Rebind
	DNSSeen       func(label string) bool
}

// Report is the outcome of one probe run.
type Report struct {
	Bottle  string   `json:"bottle"`
	Guest   string   `json:"guest"`
	Passed  bool     `json:"passed"`
	Millis  int64    `json:"millis"`
	Results []Result `json:"results"`
}

// Run probes a live bottle: it observes it, starts the host canaries, runs
// the plan in the guest and judges the results. An error means the probe
// could not run at all; failed probes are in the Report.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	t, g, err := observe(ctx, o)
	if err != nil {
		return nil, err
	}
	results, err := runIn(ctx, o, t, g)
	if err != nil {
		return nil, err
	}
	return &Report{Bottle: o.Bottle, Guest: g.String(), Passed: Passed(results),
		Millis: time.Since(start).Milliseconds(), Results: results}, nil
}

// runIn runs the plan for t in g with this run's canaries, and judges what
// the guest reports against what the host saw.
func runIn(ctx context.Context, o Options, t Target, g guest) ([]Result, error) {
	can, err := StartCanaries()
	if err != nil {
		return nil, err
	}
	defer can.Close()
	t.Canary = can.Canaries
	t.MetadataToken = o.MetadataToken
	t.DNSControl = o.DNSControl
	t.Rebind = o.Rebind
	t.Nonce = "x" + NewToken()[:16]
	plan := BuildPlan(t)
	plan.RemoveSelf = true
	// Before the guest runs: the host reaches its canary at each of its
	// public addresses, or a refusal to reach them would prove nothing.
	controls := publicControls(ctx, t, can)

	ctx, cancel := context.WithTimeout(ctx, o.Timeout+30*time.Second)
	defer cancel()
	argv, err := g.install(ctx, o.Binary)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	out, err := g.run(ctx, append(argv, "probe-run", string(raw)))
	if err != nil {
		return nil, err
	}
	if err := can.Finish(ctx); err != nil {
		return nil, fmt.Errorf("probe: count what reached the host canaries: %w", err)
	}
	var res Output
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("probe: runner output in %s is not JSON: %w: %.200q", g, err, out)
	}
	results := Confirm(plan, can.Canaries, append(Judge(plan, res.Observations), controls...), can.Arrivals())
	if o.DNSSeen != nil {
		results = append(results, nonceResult(t.Nonce, o.DNSSeen))
	}
	return results, nil
}

// publicControls are the host-side controls of the probes of the host's
// public addresses: the host itself gets the token from its canary there.
func publicControls(ctx context.Context, t Target, can *HostCanaries) []Result {
	if !slices.Contains(t.Daemons, spec.DaemonEgress) {
		return nil
	}
	var out []Result
	for i, a := range publicProbed(t) {
		r := Result{ID: "14." + strconv.Itoa(i*3+1), Name: "control: the host reaches its canary at " + a.String(), Expected: Allowed,
			Observed: "TOKEN RETURNED", Verdict: Pass}
		if err := can.HostGet(ctx, a); err != nil {
			r.fail("no token", "the probes of "+a.String()+" below prove nothing: "+err.Error())
		}
		out = append(out, r)
	}
	return out
}

// nonceResult is the host-side half of the DNS exfiltration probe: the
// canary upstream resolver must never have been asked the nonce.
func nonceResult(nonce string, seen func(string) bool) Result {
	r := Result{ID: "7.99", Name: "exfil nonce never reached the upstream resolver", Expected: Blocked,
		Observed: "never seen upstream", Verdict: Pass}
	if seen(nonce) {
		r.fail("NONCE SEEN UPSTREAM", "the canary resolver was asked a name carrying "+nonce)
	}
	return r
}

// hostAddrs lists the host's own IPv4 addresses other than loopback and
// link-local, at most 24: the LAN's and docker0's first, then the bridges'
// gateways (there may be many, one per bottle).
func hostAddrs() []netip.Addr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var first, bridges []netip.Addr
	for _, ifc := range ifs {
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if !ip.Is4() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
				continue
			}
			if strings.HasPrefix(ifc.Name, "br-") {
				bridges = append(bridges, ip)
			} else {
				first = append(first, ip)
			}
		}
	}
	sort.Slice(first, func(i, j int) bool { return first[i].Less(first[j]) })
	sort.Slice(bridges, func(i, j int) bool { return bridges[i].Less(bridges[j]) })
	out := append(first, bridges...)
	if len(out) > 24 {
		out = out[:24]
	}
	return out
}
