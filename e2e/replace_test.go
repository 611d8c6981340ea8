package e2e

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
)

// connectStatus sends CONNECT target to bottle b's egress gate from the
// host (a smolvm bottle's network has the host at .1, so the bundle's
// address is reachable) and returns the status and reason the gate answers.
func (e *env) connectStatus(b, target string) (int, string) {
	e.t.Helper()
	addr := net.JoinHostPort(e.bundleIP(b), "3128")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		e.t.Fatalf("dial the egress gate of %s at %s: %v", b, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		e.t.Fatalf("CONNECT %s via %s: %v", target, addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		e.t.Fatalf("CONNECT %s via %s: read response: %v", target, addr, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// bundleAllow returns the allowlist bottle b's bundle container was given.
func (e *env) bundleAllow(b string) []string {
	e.t.Helper()
	for _, kv := range e.inspect(bundleName(b)).Config.Env {
		if v, ok := strings.CutPrefix(kv, bundle.ConfigEnv+"="); ok {
			cfg, err := bundle.DecodeConfig(v)
			if err != nil {
				e.t.Fatalf("bundle %s: %v", bundleName(b), err)
			}
			return cfg.Allow
		}
	}
	e.t.Fatalf("bundle %s has no %s", bundleName(b), bundle.ConfigEnv)
	return nil
}

// An egress.allow change replaces the bundle only (the machine is stopped
// for the swap and started again, not recreated), and the new gate enforces
// the new list; an allowCIDRs change recreates the machine only, with the
// new range in its create call.
func TestEgressAllowAndAllowCIDRsReplaceTheirRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.name("a"), e.name("b")
	const one, two = "one.bottle-e2e.invalid", "two.bottle-e2e.invalid"
	allow := func(hosts ...string) string {
		return "  egress:\n    allow: [" + strings.Join(hosts, ", ") + "]\n"
	}
	e.write("a", bottleSpec{Extra: allow(one, two)})
	e.write("b", bottleSpec{})
	e.mustOnce()
	e.assertBottle(a)
	// Allowed names are dialled (and fail to resolve: .invalid), not refused.
	for _, h := range []string{one, two} {
		if code, body := e.connectStatus(a, h+":443"); code == http.StatusForbidden {
			t.Fatalf("CONNECT %s, allowlisted, refused: %d %s", h, code, body)
		}
	}
	before, nCalls := e.ids(), len(e.calls())

	e.write("a", bottleSpec{Extra: allow(two)})
	r := e.mustOnce()
	if got, want := opStrings(ops(t, r.stderr, a)), []string{"stop guest", "delete bundle", "create bundle", "start guest"}; !slices.Equal(got, want) {
		t.Errorf("egress.allow change: operations on %s: %v, want %v\n%s", a, got, want, r)
	}
	if got := ops(t, r.stderr, b); len(got) > 0 {
		t.Errorf("operations on the untouched bottle %s: %v", b, got)
	}
	for _, c := range mutations(e.calls()[nCalls:]) {
		if c.target() != guestName(a) || (c.op() != "stop" && c.op() != "start") {
			t.Errorf("egress.allow change: smolvm call %q, want only stop and start of %s", c.Args, guestName(a))
		}
	}
	after := e.ids()
	if k := "container/" + bundleName(a); before[k] == after[k] {
		t.Errorf("bundle %s kept its ID %s across an egress.allow change", bundleName(a), before[k])
	}
	for _, k := range []string{"network/" + netName(a), "network/" + netName(b), "container/" + bundleName(b)} {
		if before[k] != after[k] {
			t.Errorf("%s changed: %s → %s", k, before[k], after[k])
		}
	}
	if got := e.bundleAllow(a); !slices.Equal(got, []string{two}) {
		t.Errorf("new bundle's allowlist %v, want [%s]", got, two)
	}
	if code, body := e.connectStatus(a, one+":443"); code != http.StatusForbidden || !strings.Contains(body, "not in the egress allowlist") {
		t.Errorf("CONNECT %s, removed from the list: %d %q, want 403 naming the allowlist", one, code, body)
	}
	if code, body := e.connectStatus(a, two+":443"); code == http.StatusForbidden {
		t.Errorf("CONNECT %s, still allowlisted, refused: %d %s", two, code, body)
	}
	e.assertBottle(a)

	before, nCalls = e.ids(), len(e.calls())
	e.write("a", bottleSpec{Extra: allow(two) + "  allowCIDRs: [192.0.2.0/24]\n"})
	r = e.mustOnce()
	if got, want := opStrings(ops(t, r.stderr, a)), []string{"delete guest", "create guest"}; !slices.Equal(got, want) {
		t.Errorf("allowCIDRs change: operations on %s: %v, want %v\n%s", a, got, want, r)
	}
	if after := e.ids(); !maps.Equal(before, after) {
		t.Errorf("allowCIDRs change touched networks or bundles:\nbefore %v\nafter  %v", before, after)
	}
	var creates []call
	for _, c := range mutations(e.calls()[nCalls:]) {
		switch {
		case c.target() != guestName(a):
			t.Errorf("smolvm call on another machine: %q", c.Args)
		case c.op() == "create":
			creates = append(creates, c)
		}
	}
	if len(creates) != 1 {
		t.Fatalf("allowCIDRs change: %d machine creates, want 1", len(creates))
	}
	if got, want := creates[0].values("--allow-cidr"), []string{e.bundleIP(a) + "/32", "192.0.2.0/24"}; !slices.Equal(got, want) {
		t.Errorf("recreated machine: --allow-cidr %q, want %q", got, want)
	}
	if m := e.machines()[guestName(a)]; m.State != "running" {
		t.Errorf("recreated machine is %s, want running", m.State)
	}
	e.assertBottle(b)
	e.assertCounts(2)
}
