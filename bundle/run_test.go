package bundle

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit/audittest"
	"github.com/go-logr/logr/testr"
	"github.com/miekg/dns"
)

type noResolver struct{}

func (noResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// fakeUpstream answers every A query with 93.184.216.34 on 127.0.0.1 UDP.
func fakeUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 93.184.216.34")
		m.Answer = []dns.RR{rr}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// startRun runs the bundle on loopback with free ports until the test ends.
func startRun(t *testing.T, cfg Config) (map[string]string, *audittest.Buffer) {
	t.Helper()
	return startRunWith(t, cfg, runOptions{})
}

// startRunWith is startRun with o's watchdog interval and proxy resolver.
func startRunWith(t *testing.T, cfg Config, o runOptions) (map[string]string, *audittest.Buffer) {
	t.Helper()
	out := &audittest.Buffer{}
	ready := make(chan map[string]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	res := o.proxyResolver
	if res == nil {
		res = noResolver{}
	}
	go func() {
		done <- run(ctx, testr.New(t), cfg, runOptions{
			controlAddr: "127.0.0.1:0", ephemeral: true, audit: out, proxyResolver: res,
			ready: func(m map[string]string) { ready <- m }, watchdog: o.watchdog,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	select {
	case m := <-ready:
		return m, out
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("run never became ready")
	}
	return nil, nil
}

func waitHealthy(t *testing.T, control string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := Health(context.Background(), control)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunServesDaemons(t *testing.T) {
	cfg := Config{
		Bottle:   "b1",
		Daemons:  []string{DaemonEgress, DaemonDNS},
		Allow:    []string{"allowed.test"},
		Listen:   netip.MustParseAddr("127.0.0.1"),
		Upstream: fakeUpstream(t),
	}
	addrs, out := startRun(t, cfg)
	waitHealthy(t, addrs["control"])

	// The egress gate answers, and denies what is not listed.
	c, err := net.DialTimeout("tcp", addrs[DaemonEgress], 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT example.test:443: %v %v, want 403", resp, err)
	}

	// The resolver answers allowed names over UDP and TCP, nothing else.
	for _, network := range []string{"udp", "tcp"} {
		client := &dns.Client{Net: network, Timeout: 2 * time.Second}
		for name, want := range map[string]int{"allowed.test.": dns.RcodeSuccess, "evil.test.": dns.RcodeNameError} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			r, _, err := client.Exchange(m, addrs[DaemonDNS])
			if err != nil || r.Rcode != want {
				t.Fatalf("%s %s: %v %v, want %s", network, name, r, err, dns.RcodeToString[want])
			}
		}
	}
	log := out.String()
	for _, want := range []string{`"daemon":"egress"`, `"target":"example.test:443"`, `"daemon":"dns"`, `"target":"evil.test."`, `"bottle":"b1"`} {
		if !strings.Contains(log, want) {
			t.Errorf("decision log lacks %s:\n%s", want, log)
		}
	}
}

func TestRunNoDaemons(t *testing.T) {
	addrs, _ := startRun(t, Config{Bottle: "idle", Daemons: []string{}})
	waitHealthy(t, addrs["control"])
	if _, ok := addrs[DaemonEgress]; ok {
		t.Error("egress bound with no daemons selected")
	}
}

func TestRunRejectsConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown daemon", Config{Daemons: []string{"socks"}, Listen: netip.MustParseAddr("127.0.0.1")}, "unknown daemon"},
		{"unspecified listen", Config{Daemons: []string{DaemonEgress}, Listen: netip.MustParseAddr("0.0.0.0")}, "listen address"},
		{"no listen", Config{Daemons: []string{DaemonDNS}}, "listen address"},
		{"bad rule", Config{Daemons: []string{DaemonEgress}, Listen: netip.MustParseAddr("127.0.0.1"), Allow: []string{"http://x/"}}, "policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), testr.New(t), tt.cfg, runOptions{controlAddr: "127.0.0.1:0", ephemeral: true, audit: io.Discard})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	up := func() bool { return true }
	down := func() bool { return false }
	tests := []struct {
		name    string
		daemons []daemon
		code    int
		body    string
	}{
		{"none", nil, 200, "ok b"},
		{"all serving", []daemon{{name: "egress", serving: up}, {name: "dns", serving: up}}, 200, "ok b"},
		{"dns down", []daemon{{name: "egress", serving: up}, {name: "dns", serving: down}}, 503, "not serving: dns"},
		{"both down", []daemon{{name: "egress", serving: down}, {name: "dns", serving: down}}, 503, "not serving: egress, dns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			controlMux(Config{Bottle: "b"}, tt.daemons).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tt.code, tt.body)
			}
		})
	}
}

// The proxy must resolve through the configured upstream, the same one the
// resolver daemon forwards to, not through the container's resolv.conf.
func TestUpstreamResolver(t *testing.T) {
	up := fakeUpstream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := upstreamResolver(up).LookupNetIP(ctx, "ip4", "only-the-fake-knows.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || ips[0] != netip.MustParseAddr("93.184.216.34") {
		t.Fatalf("ips = %v", ips)
	}
}

// zoneUpstream answers A queries from zone on 127.0.0.1, UDP and TCP, as
// the host's resolver would; other names get NXDOMAIN.
func zoneUpstream(t *testing.T, zone map[string]string) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if ip, ok := zone[strings.ToLower(q.Name)]; ok && q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Name + " 60 IN A " + ip)
			m.Answer = []dns.RR{rr}
		} else if !ok {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skipf("upstream TCP port taken: %v", err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// TestRunResolvesThroughUpstream runs the whole bundle with the production
// resolver path (no test resolver): the proxy and the DNS daemon both ask
// the configured upstream, a name that resolves to 127.0.0.1 is refused
// with 403 and a log line, the same name's DNS answer is dropped, and a
// name whose rule and address literal are both listed reaches the origin.
func TestRunResolvesThroughUpstream(t *testing.T) {
	org := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.Host)
	}))
	t.Cleanup(org.Close)
	_, op, _ := net.SplitHostPort(org.Listener.Addr().String())
	up := zoneUpstream(t, map[string]string{"rebind.test.": "127.0.0.1", "local.test.": "127.0.0.1"})
	cfg := Config{
		Bottle:   "b2",
		Daemons:  []string{DaemonEgress, DaemonDNS},
		Allow:    []string{"rebind.test:" + op, "local.test:" + op, "127.0.0.1:" + op},
		Listen:   netip.MustParseAddr("127.0.0.1"),
		Upstream: up,
	}
	out := &audittest.Buffer{}
	ready := make(chan map[string]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, testr.New(t), cfg, runOptions{controlAddr: "127.0.0.1:0", ephemeral: true, audit: out,
			ready: func(m map[string]string) { ready <- m }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var addrs map[string]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	waitHealthy(t, addrs["control"])

	get := func(host string) (int, string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addrs[DaemonEgress], 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET http://"+host+":"+op+"/ HTTP/1.1\r\nHost: "+host+":"+op+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// local.test resolves to 127.0.0.1, which a rule names literally.
	if code, body := get("local.test"); code != 200 || !strings.Contains(body, "origin local.test") {
		t.Errorf("local.test (name and literal listed): %d %q, want 200 from the origin", code, body)
	}
	log := out.String()
	if !strings.Contains(log, `"target":"local.test:`+op+`","verdict":"allow"`) {
		t.Errorf("no allow line for local.test:\n%s", log)
	}

	// Without the literal rule a name resolving to 127.0.0.1 is refused.
	cfg2 := cfg
	cfg2.Allow = []string{"rebind.test:" + op}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	ctx, cancel2 := context.WithCancel(context.Background())
	t.Cleanup(cancel2)
	out = &audittest.Buffer{}
	go func() {
		done <- run(ctx, testr.New(t), cfg2, runOptions{controlAddr: "127.0.0.1:0", ephemeral: true, audit: out,
			ready: func(m map[string]string) { ready <- m }})
	}()
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	waitHealthy(t, addrs["control"])
	if code, body := get("rebind.test"); code != http.StatusForbidden || !strings.Contains(body, "loopback") {
		t.Errorf("rebind.test -> 127.0.0.1: %d %q, want 403 naming loopback", code, body)
	}
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("rebind.test.", dns.TypeA)
		r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addrs[DaemonDNS])
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("%s rebind.test: %v %v, want an empty answer", network, r, err)
		}
	}
	log = out.String()
	for _, want := range []string{
		`"daemon":"egress","client":"127.0.0.1:`,
		`"target":"rebind.test:` + op + `","verdict":"deny","reason":"address 127.0.0.1 refused: 127.0.0.0/8 reaches the host's loopback"`,
		`"daemon":"dns"`, `"reason":"rebinding: address 127.0.0.1 refused: 127.0.0.0/8 reaches the host's loopback"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("decision log lacks %s:\n%s", want, log)
		}
	}
}

// TestRunRefusesHostAddrs: an address the reconciler passes as one of the
// host's is refused by both daemons, by name and by literal, though it is
// in no refused range and a rule names it.
func TestRunRefusesHostAddrs(t *testing.T) {
	const host = "198.51.100.7" // documentation space: in no refused range
	up := zoneUpstream(t, map[string]string{"host.test.": host})
	cfg := Config{
		Bottle:    "b3",
		Daemons:   []string{DaemonEgress, DaemonDNS},
		Allow:     []string{"host.test"},
		Listen:    netip.MustParseAddr("127.0.0.1"),
		Upstream:  up,
		HostAddrs: []netip.Addr{netip.MustParseAddr(host)},
	}
	addrs, out := startRunWith(t, cfg, runOptions{proxyResolver: upstreamResolver(up)})
	c, err := net.DialTimeout("tcp", addrs[DaemonEgress], 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "CONNECT host.test:443 HTTP/1.1\r\nHost: host.test:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), host) {
		t.Errorf("CONNECT host.test:443 (resolves to the host's %s): %d %q, want 403 naming it", host, resp.StatusCode, body)
	}
	m := new(dns.Msg)
	m.SetQuestion("host.test.", dns.TypeA)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, addrs[DaemonDNS])
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("host.test: %v %v, want an empty answer (the host's address dropped)", r, err)
	}
	if log := out.String(); !strings.Contains(log, "address "+host+" refused") {
		t.Errorf("decision log does not name %s as refused:\n%s", host, log)
	}
}
