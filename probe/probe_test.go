package probe

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func testTarget() Target {
	rule, _ := spec.ParseHostRule("api.example.com")
	return Target{
		Bottle: "a", GuestKind: spec.GuestDocker,
		Subnet:  netip.MustParsePrefix("10.218.0.0/29"),
		Gateway: netip.MustParseAddr("10.218.0.1"), Bundle: netip.MustParseAddr("10.218.0.2"),
		Daemons:     []string{spec.DaemonEgress, spec.DaemonDNS},
		Allow:       []spec.HostRule{rule},
		HostAddrs:   []netip.Addr{netip.MustParseAddr("10.218.0.1"), netip.MustParseAddr("172.17.0.1"), netip.MustParseAddr("192.0.2.2")},
		PublicAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")},
		Peers:       []Peer{{Bottle: "b", Bundle: netip.MustParseAddr("10.218.0.10"), Guest: netip.MustParseAddr("10.218.0.11")}},
		Canary:      Canaries{Token: "tok", Loopback: 1001, Any: 1002, UDP: 1003},
		Rebind:      []Rebind{{Name: "rebind.example.com", BadIPs: []string{"127.0.0.1"}}, {Name: "peer", Proxy: true}},
	}
}

func TestBuildPlan(t *testing.T) {
	p := BuildPlan(testTarget())
	ids := map[string]bool{}
	groups := map[string]bool{}
	for _, c := range p.Checks {
		if ids[c.ID] {
			t.Fatalf("duplicate id %s", c.ID)
		}
		ids[c.ID] = true
		g, _, _ := strings.Cut(c.ID, ".")
		groups[g] = true
		if _, ok := kinds[c.Kind]; !ok {
			t.Errorf("%s: unknown kind %q", c.ID, c.Kind)
		}
		if c.Kind == KindProxy && (c.Status != http.StatusForbidden || c.Addr != "10.218.0.2:3128") {
			t.Errorf("%s: proxy check %+v", c.ID, c)
		}
	}
	for g := range 15 {
		if !groups[strconv.Itoa(g)] {
			t.Errorf("no probe in group %d", g)
		}
	}
	find := func(name string) Check {
		for _, c := range p.Checks {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no check %q in plan", name)
		return Check{}
	}
	if c := find("bundle TCP scan 1-65535 (only 3128,53 may be open)"); !slices.Equal(c.Ports, []int{3128, 53}) || c.Expect != Blocked {
		t.Errorf("scan %+v", c)
	}
	if c := find("control: a TCP scan of bundle ports 53-3128 finds 3128,53 open"); c.Kind != KindScan || c.Expect != Allowed || c.Addr != "10.218.0.2" || len(c.Ports) != 0 || c.ScanFrom != 53 || c.ScanTo != 3128 {
		t.Errorf("scan control %+v", c)
	}
	if c := find("host 10.218.0.1 canary direct"); c.Addr != "10.218.0.1:1002" || c.Token != "tok" {
		t.Errorf("%+v", c)
	}
	// The host's public address through the proxy, refused with 403, and
	// seen by the any-address canary if it is not.
	for _, name := range []string{"host's public address 198.51.100.1 via proxy (absolute URI)", "host's public address 198.51.100.1 via proxy (CONNECT)"} {
		c := find(name)
		if k, ok := canaryTarget(c, testTarget().Canary); c.Status != http.StatusForbidden || !ok || k != (canaryKey{CanaryAny, netip.MustParseAddr("198.51.100.1")}) {
			t.Errorf("%s: %+v aims at %v (%v)", name, c, k, ok)
		}
	}
	find("allowlisted api.example.com on port 22")
	find("bottle b's proxy via proxy")
	find("rebinding name rebind.example.com via the bundle's resolver")
	find("rebinding name peer via proxy (CONNECT)")
	if c := find("control: the bundle's proxy answers"); c.Expect != Allowed {
		t.Errorf("%+v", c)
	}

	// Without the egress daemon there is no proxy to probe, and 3128 must
	// be closed.
	tg := testTarget()
	tg.Daemons = []string{spec.DaemonDNS}
	for _, c := range BuildPlan(tg).Checks {
		if c.Kind == KindProxy {
			t.Errorf("proxy check without the egress daemon: %+v", c)
		}
		if c.Kind == KindScan && c.Expect == Blocked && !slices.Equal(c.Ports, []int{53}) {
			t.Errorf("scan ports %v", c.Ports)
		}
	}
	// With no daemon nothing on the bundle is open, so there is no control
	// to run, and the scan allows nothing.
	tg.Daemons = []string{}
	for _, c := range BuildPlan(tg).Checks {
		if c.Kind == KindScan && (c.Expect != Blocked || len(c.Ports) != 0) {
			t.Errorf("scan without daemons: %+v", c)
		}
	}
}

func TestJudge(t *testing.T) {
	p := Plan{Checks: []Check{
		{ID: "1.1", Expect: Blocked}, {ID: "1.2", Expect: Blocked}, {ID: "0.1", Expect: Allowed},
		{ID: "1.10", Expect: Allowed}, {ID: "2.1", Expect: Blocked},
	}}
	rs := Judge(p, []Observation{{ID: "1.1"}, {ID: "1.2", Reached: true}, {ID: "0.1", Reached: true}, {ID: "1.10"}})
	got := map[string]string{}
	var order []string
	for _, r := range rs {
		got[r.ID] = r.Verdict
		order = append(order, r.ID)
	}
	want := map[string]string{"1.1": Pass, "1.2": Fail, "0.1": Pass, "1.10": Fail, "2.1": Fail}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("%s: verdict %s, want %s", id, got[id], v)
		}
	}
	if !slices.Equal(order, []string{"0.1", "1.1", "1.2", "1.10", "2.1"}) {
		t.Errorf("order %v", order)
	}
	if Passed(rs) || Passed(nil) {
		t.Error("Passed")
	}
}

func TestSlowBlocks(t *testing.T) {
	p := Plan{Checks: []Check{
		{ID: "1.1", Name: "refused", Expect: Blocked}, {ID: "1.2", Name: "timed out", Expect: Blocked},
		{ID: "1.3", Name: "no echo", Expect: Blocked}, {ID: "1.4", Name: "dns wait", Expect: Blocked},
		{ID: "1.5", Name: "leak", Expect: Blocked}, {ID: "0.1", Name: "control", Expect: Allowed},
	}}
	rs := Judge(p, []Observation{
		{ID: "1.1", Observed: "no route", Millis: 1}, {ID: "1.2", Observed: "timeout", Millis: 2000},
		{ID: "1.3", Observed: "ping socket: no reply", Millis: 1500}, {ID: "1.4", Observed: "timeout (1.1.1.1:53/udp)", Millis: 1500},
		{ID: "1.5", Reached: true, Observed: "TOKEN RETURNED"}, {ID: "0.1", Reached: true, Observed: "CONNECTED"},
	})
	var slowIDs []string
	for _, r := range rs {
		if r.Slow {
			slowIDs = append(slowIDs, r.ID)
		}
	}
	if !slices.Equal(slowIDs, []string{"1.2", "1.3", "1.4"}) {
		t.Errorf("slow %v, want 1.2 1.3 1.4", slowIDs)
	}
	var b strings.Builder
	Render(&b, &Report{Bottle: "b", Guest: "g", Results: rs})
	out := b.String()
	for _, want := range []string{"1.2  timed out  blocked   timeout                   pass (slow)  2000", "3 block(s) held only by a timeout", "LEAKS: 1 of 6"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "pass (slow)") != 3 {
		t.Errorf("table marks %d slow, want 3:\n%s", strings.Count(out, "pass (slow)"), out)
	}
}

// TestChecksSeeCanaries runs the runner's checks on the host against the
// canaries, where the paths are open: every check must see what it looks
// for, so a blocked result in a guest means something.
func TestChecksSeeCanaries(t *testing.T) {
	can, err := StartCanaries()
	if err != nil {
		t.Fatal(err)
	}
	defer can.Close()
	dnsc, err := StartDNSCanary("127.0.0.1:0", map[string][]netip.Addr{"rebind.test": {netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	defer dnsc.Close()
	proxy := fakeProxy(t, can.Token)
	lo := netip.MustParseAddr("127.0.0.1")
	closed := freePort(t)
	p := Plan{Checks: []Check{
		{ID: "1", Kind: KindHTTP, Addr: ap(lo, can.Loopback), Token: can.Token},
		{ID: "2", Kind: KindHTTP, Addr: ap(lo, can.Any), Token: can.Token},
		{ID: "3", Kind: KindUDP, Addr: ap(lo, can.UDP), Token: can.Token},
		{ID: "4", Kind: KindTCP, Addr: ap(lo, can.Any)},
		{ID: "5", Kind: KindDNS, Addr: dnsc.Addr, Query: "rebind.test", BadIPs: []string{"127.0.0.1"}},
		{ID: "6", Kind: KindDNS, Addr: dnsc.Addr, Net: "tcp", Query: "nonce1.exfil.test", DNSWant: DNSReply},
		{ID: "7", Kind: KindProxy, Addr: proxy, Method: http.MethodConnect, Target: "x:1", Token: can.Token, Status: 403},
		{ID: "8", Kind: KindProxy, Addr: proxy, Method: http.MethodGet, Target: "http://x/", Token: can.Token, Status: 403},
		{ID: "9", Kind: KindRoute, Addr: ap(lo, 9)},
		{ID: "10", Kind: KindFiles, Paths: []string{"/proc/self"}},
		// And the other way: paths that are closed.
		{ID: "20", Kind: KindHTTP, Addr: ap(lo, closed), Token: can.Token},
		{ID: "21", Kind: KindDNS, Addr: dnsc.Addr, Query: "nonce2.exfil.test"},
		{ID: "22", Kind: KindFiles, Paths: []string{"/nonexistent/docker.sock"}},
		{ID: "23", Kind: KindScan, Addr: "127.0.0.1", Ports: []int{int(can.Loopback), int(can.Any)}, TimeoutMillis: 200},
	}}
	start := time.Now()
	obs := Execute(context.Background(), p)
	for _, o := range obs {
		want := len(o.ID) == 1 || o.ID == "10"
		if o.ID == "23" {
			// The host has other listeners; the scan must at least see
			// the canaries and not call them unexpected.
			if strings.Contains(o.Observed, itoa(can.Any)) {
				t.Errorf("scan: %s", o.Observed)
			}
			continue
		}
		if o.Reached != want {
			t.Errorf("check %s: reached %v, want %v: %s (%s)", o.ID, o.Reached, want, o.Observed, o.Detail)
		}
	}
	if obs[10].Observed != "refused" {
		t.Errorf("closed port observed %q", obs[10].Observed)
	}
	if !dnsc.Seen("nonce1") || !dnsc.Seen("NONCE2") || dnsc.Seen("nonce3") {
		t.Errorf("dns canary asked %v", dnsc.Asked())
	}
	t.Logf("%d checks in %s", len(obs), time.Since(start))
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func freePort(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// fakeProxy is an open proxy that answers every request with the token: a
// broken gate the proxy checks must catch.
func fakeProxy(t *testing.T, token string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Method == http.MethodConnect {
			_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			_, _ = http.ReadRequest(br)
			_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n"+token)
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(uint16(len(token)))+"\r\n\r\n"+token)
	})
	return ln.Addr().String()
}

// serve hands each connection ln accepts to handle, in its own goroutine,
// and closes the connection after; ln is closed when t ends.
func serve(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// TestScanFindsWhatIsOpen is the scanner's positive control on the host:
// listeners at both ends of the port range and in between, on a loopback
// address of their own, must be found, reported when not allowed and
// accepted when allowed. A scanner that scans nothing, or stops short of
// 65535, fails here.
func TestScanFindsWhatIsOpen(t *testing.T) {
	const host = "127.0.0.77" // all of 127/8 is loopback on Linux
	var ports []int
	for _, p := range []int{1, 0, 65535} { // 0: one the kernel picks
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			if p == 1 {
				t.Logf("low edge not tested: listen on %s:1: %v (needs root)", host, err)
				continue
			}
			t.Fatalf("listen on %s:%d: %v", host, p, err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	slices.Sort(ports)
	p := Plan{Checks: []Check{
		{ID: "1", Kind: KindScan, Expect: Blocked, Addr: host},
		{ID: "2", Kind: KindScan, Expect: Blocked, Addr: host, Ports: ports},
		// A bounded scan (the plan's twin) sees its range and nothing past it.
		{ID: "3", Kind: KindScan, Expect: Allowed, Addr: host, ScanFrom: ports[len(ports)-2], ScanTo: ports[len(ports)-2]},
	}}
	obs := Execute(context.Background(), p)
	// Nothing allowed: every listener is unexpected, and the check fails.
	if !obs[0].Reached || !strings.HasPrefix(obs[0].Observed, "UNEXPECTED OPEN: ") {
		t.Fatalf("scan allowing nothing: %+v", obs[0])
	}
	found := strings.Split(strings.TrimPrefix(obs[0].Observed, "UNEXPECTED OPEN: "), ",")
	for _, p := range ports {
		if !slices.Contains(found, strconv.Itoa(p)) {
			t.Errorf("scan missed open port %d: %s", p, obs[0].Observed)
		}
	}
	// As the plan's twin (Expect Allowed), that scan passes.
	twin := Plan{Checks: []Check{{ID: "1", Kind: KindScan, Expect: Allowed, Addr: host}}}
	if r := Judge(twin, obs[:1]); !Passed(r) {
		t.Errorf("the scan control against open ports failed: %+v", r)
	}
	if want := "UNEXPECTED OPEN: " + strconv.Itoa(ports[len(ports)-2]); obs[2].Observed != want {
		t.Errorf("scan of port %d alone: %q, want %q", ports[len(ports)-2], obs[2].Observed, want)
	}
	// All allowed: none of them is unexpected (the host's wildcard
	// listeners answer on this address too, so others may be).
	if rest, unexpected := strings.CutPrefix(obs[1].Observed, "UNEXPECTED OPEN: "); unexpected {
		for _, p := range ports {
			if slices.Contains(strings.Split(rest, ","), strconv.Itoa(p)) {
				t.Errorf("allowed port %d reported unexpected: %s", p, obs[1].Observed)
			}
		}
	} else if obs[1].Observed != "open: "+ints(ports) {
		t.Errorf("scan allowing the listeners: %q, want %q", obs[1].Observed, "open: "+ints(ports))
	}
}
