package resolver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/miekg/dns"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit/audittest"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/policy"
)

// upstream is a local authoritative stand-in for the recursive resolver.
// It records every name it is asked, so tests can prove denied names never
// leave the bundle.
type upstream struct {
	mu   sync.Mutex
	seen []string
	zone map[string][]dns.RR
}

func newUpstream(t *testing.T) (*upstream, string) {
	t.Helper()
	u := &upstream{zone: map[string][]dns.RR{}}
	add := func(s string) {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%s/%d", strings.ToLower(rr.Header().Name), rr.Header().Rrtype)
		u.zone[k] = append(u.zone[k], rr)
	}
	add("allowed.test. 60 IN A 93.184.216.34")
	add("allowed.test. 60 IN AAAA 2606:2800:220:1:248:1893:25c8:1946")
	add("a.wild.test. 60 IN A 1.2.3.4")
	add("rebind.test. 60 IN A 127.0.0.1")
	add("ten.test. 60 IN A 10.0.0.1")
	add("mixed.test. 60 IN A 127.0.0.1")
	add("mixed.test. 60 IN A 5.6.7.8")
	add("v6rebind.test. 60 IN AAAA fd00::1")
	add("v6rebind.test. 60 IN AAAA ::ffff:169.254.169.254")
	add("txt.test. 60 IN TXT \"hello\"")
	add("lit.test. 60 IN A 10.9.9.9")
	add("lit.test. 60 IN A 10.9.9.8")
	add("cname.test. 60 IN CNAME allowed.test.")
	for i := range 100 {
		add(fmt.Sprintf("big.test. 60 IN A 8.8.%d.%d", i/250, i%250+1))
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		pc.Close()
		t.Skipf("upstream TCP port %d taken: %v", port, err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: ln, Handler: u}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u, pc.LocalAddr().String()
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	u.mu.Lock()
	u.seen = append(u.seen, strings.ToLower(q.Name))
	u.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	name := strings.ToLower(q.Name)
	m.Answer = append(m.Answer, u.zone[fmt.Sprintf("%s/%d", name, q.Qtype)]...)
	if cn := u.zone[fmt.Sprintf("%s/%d", name, dns.TypeCNAME)]; len(cn) > 0 && q.Qtype != dns.TypeCNAME {
		m.Answer = append(cn, u.zone[fmt.Sprintf("%s/%d", cn[0].(*dns.CNAME).Target, q.Qtype)]...)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func (u *upstream) asked(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.seen, name)
}

// count returns how often the upstream was asked name.
func (u *upstream) count(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, s := range u.seen {
		if s == name {
			n++
		}
	}
	return n
}

// startServer runs the resolver on loopback and returns its UDP and TCP
// addresses.
func startServer(t *testing.T, upstreamAddr string, allow []string) (string, string, *audittest.Buffer) {
	t.Helper()
	udp, tcp, buf, _ := startServerWith(t, upstreamAddr, allow, Options{})
	return udp, tcp, buf
}

// startServerWith is startServer with opts (Policy, Upstream, Audit and
// Log are filled in); it also returns the audit log.
func startServerWith(t *testing.T, upstreamAddr string, allow []string, opts Options) (string, string, *audittest.Buffer, *audit.Log) {
	t.Helper()
	pol, err := policy.New(allow, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := &audittest.Buffer{}
	al := audit.New(buf, "bottle-test")
	opts.Policy, opts.Upstream, opts.Audit, opts.Log = pol, upstreamAddr, al, testr.New(t)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	for deadline := time.Now().Add(2 * time.Second); !s.Serving(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("resolver not serving")
		}
	}
	return pc.LocalAddr().String(), ln.Addr().String(), buf, al
}

var testAllow = []string{"allowed.test", "*.wild.test", "rebind.test", "ten.test", "mixed.test",
	"v6rebind.test", "txt.test:8443", "cname.test", "big.test", "lit.test", "10.9.9.9"}

func TestResolver(t *testing.T) {
	up, upAddr := newUpstream(t)
	udpAddr, tcpAddr, log := startServer(t, upAddr, testAllow)
	tests := []struct {
		name    string
		qtype   uint16
		rcode   int
		answers []string // rdata of A/AAAA/TXT/CNAME answers, in order
		verdict string
		reason  string
	}{
		{"allowed.test.", dns.TypeA, dns.RcodeSuccess, []string{"93.184.216.34"}, audit.Allow, "allowlisted"},
		{"ALLOWED.TEST.", dns.TypeA, dns.RcodeSuccess, []string{"93.184.216.34"}, audit.Allow, "allowlisted"},
		{"allowed.test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"2606:2800:220:1:248:1893:25c8:1946"}, audit.Allow, "allowlisted"},
		{"a.wild.test.", dns.TypeA, dns.RcodeSuccess, []string{"1.2.3.4"}, audit.Allow, "allowlisted"},
		{"cname.test.", dns.TypeA, dns.RcodeSuccess, []string{"allowed.test.", "93.184.216.34"}, audit.Allow, "allowlisted"},
		{"txt.test.", dns.TypeTXT, dns.RcodeSuccess, []string{`"hello"`}, audit.Allow, "allowlisted"},
		{"mixed.test.", dns.TypeA, dns.RcodeSuccess, []string{"5.6.7.8"}, audit.Allow, "dropped address 127.0.0.1 refused: 127.0.0.0/8 reaches the host's loopback"},
		{"rebind.test.", dns.TypeA, dns.RcodeSuccess, nil, audit.Deny, "rebinding: address 127.0.0.1 refused: 127.0.0.0/8 reaches the host's loopback"},
		{"ten.test.", dns.TypeA, dns.RcodeSuccess, nil, audit.Deny, "rebinding: address 10.0.0.1 refused"},
		// A rule naming the literal admits that private address only.
		{"lit.test.", dns.TypeA, dns.RcodeSuccess, []string{"10.9.9.9"}, audit.Allow, "dropped address 10.9.9.8"},
		{"v6rebind.test.", dns.TypeAAAA, dns.RcodeSuccess, nil, audit.Deny, "rebinding"},
		{"wild.test.", dns.TypeA, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"evil-allowed.test.", dns.TypeA, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"allowed.test.evil.test.", dns.TypeA, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"n0nce-5f3a.exfil.test.", dns.TypeA, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"n0nce-5f3a.exfil.test.", dns.TypeTXT, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"1.0.0.127.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"127.0.0.1.", dns.TypeA, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"_sip._tcp.allowed.test.", dns.TypeSRV, dns.RcodeNameError, nil, audit.Deny, "not in the egress allowlist"},
		{"allowed.test.", dns.TypeANY, dns.RcodeRefused, nil, audit.Deny, "query type refused"},
		{"allowed.test.", dns.TypeHTTPS, dns.RcodeSuccess, nil, audit.Deny, "not forwarded"},
		{"allowed.test.", dns.TypeMX, dns.RcodeSuccess, nil, audit.Deny, "not forwarded"},
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": udpAddr, "tcp": tcpAddr}[network]
		client := &dns.Client{Net: network, Timeout: 2 * time.Second}
		for _, tt := range tests {
			t.Run(network+"/"+tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
				m := new(dns.Msg)
				m.SetQuestion(tt.name, tt.qtype)
				r, _, err := client.Exchange(m, addr)
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				var got []string
				for _, rr := range r.Answer {
					switch v := rr.(type) {
					case *dns.A:
						got = append(got, v.A.String())
					case *dns.AAAA:
						got = append(got, v.AAAA.String())
					case *dns.CNAME:
						got = append(got, v.Target)
					case *dns.TXT:
						got = append(got, `"`+strings.Join(v.Txt, "")+`"`)
					default:
						got = append(got, rr.String())
					}
				}
				if r.Rcode != tt.rcode || !slices.Equal(got, tt.answers) {
					t.Errorf("got %s %q, want %s %q", dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tt.rcode], tt.answers)
				}
				d := log.Last(t)
				if d.Verdict != tt.verdict || !strings.Contains(d.Reason, tt.reason) || d.Daemon != "dns" || d.Bottle != "bottle-test" {
					t.Errorf("logged %+v, want verdict %s with reason containing %q", d, tt.verdict, tt.reason)
				}
			})
		}
	}
	for _, name := range []string{"n0nce-5f3a.exfil.test.", "evil-allowed.test.", "wild.test.", "1.0.0.127.in-addr.arpa."} {
		if up.asked(name) {
			t.Errorf("upstream was asked %s, which is not allowlisted", name)
		}
	}
}

// TestTruncation checks large answers: the upstream's truncated UDP reply
// is retried over TCP, and a UDP client without EDNS gets TC and can retry.
func TestTruncation(t *testing.T) {
	_, upAddr := newUpstream(t)
	udpAddr, tcpAddr, _ := startServer(t, upAddr, testAllow)
	m := new(dns.Msg)
	m.SetQuestion("big.test.", dns.TypeA)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, tcpAddr)
	if err != nil || len(r.Answer) != 100 {
		t.Fatalf("tcp big.test: %v, %d answers; want 100", err, len(r.Answer))
	}
	r, _, err = (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, udpAddr)
	if r != nil {
		r.Compress = true // the wire size
	}
	if err != nil || !r.Truncated || r.Len() > dns.MinMsgSize {
		t.Fatalf("udp big.test: %v, truncated=%v len=%d; want TC within 512 bytes", err, r != nil && r.Truncated, r.Len())
	}
}

func TestUpstreamFailure(t *testing.T) {
	// Nothing listens on this port: bind one and close it.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	udpAddr, _, log := startServer(t, dead, testAllow)
	m := new(dns.Msg)
	m.SetQuestion("allowed.test.", dns.TypeA)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(m, udpAddr)
	if err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("got %v %v, want SERVFAIL", r, err)
	}
	if d := log.Last(t); d.Verdict != audit.Deny || !strings.Contains(d.Reason, "upstream") {
		t.Errorf("logged %+v, want an upstream deny", d)
	}
}

func TestUpstreamFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		conf, want string
	}{
		{"search example\nnameserver 127.0.0.11\nnameserver 9.9.9.9\noptions ndots:0\n", "127.0.0.11:53"},
		{"nameserver fd00::53\n", "[fd00::53]:53"},
		{"# none\n", ""},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, []byte(tt.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := UpstreamFromResolvConf(p)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("UpstreamFromResolvConf(%q) = %q, %v; want %q", tt.conf, got, err, tt.want)
		}
	}
}

// TestMaxTCPConns checks that idle TCP clients cannot hold more than
// MaxTCPConns connections: the next client waits until one closes, and a
// full listener still shuts down.
func TestMaxTCPConns(t *testing.T) {
	_, upAddr := newUpstream(t)
	pol, err := policy.New(testAllow, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Policy: pol, Upstream: upAddr, Log: testr.New(t), MaxTCPConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, nil, ln) }()
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	query := func(timeout time.Duration) error {
		m := new(dns.Msg)
		m.SetQuestion("allowed.test.", dns.TypeA)
		_, _, err := (&dns.Client{Net: "tcp", Timeout: timeout}).Exchange(m, ln.Addr().String())
		return err
	}
	if err := query(300 * time.Millisecond); err == nil {
		t.Error("a third TCP client was served while two held every slot")
	}
	idle[0].Close()
	if err := query(2 * time.Second); err != nil {
		t.Errorf("after a slot was freed: %v", err)
	}
	// Fill the slots again, then shut down: Serve must return.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("Serve did not return with a full TCP listener")
	}
}

// query asks addr one question over UDP and returns the rcode.
func query(t *testing.T, addr, name string, qtype uint16) int {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %s: %v", name, err)
	}
	return r.Rcode
}

// A bottle's queries past its token bucket are REFUSED, never reach the
// upstream, and a run of them is one counted line in the log. The bucket
// refills so slowly here that no refill can happen during the test.
func TestQueryRateLimit(t *testing.T) {
	up, upAddr := newUpstream(t)
	udp, _, log, al := startServerWith(t, upAddr, testAllow, Options{QueryRate: 1e-9, QueryBurst: 3})
	for i := range 3 {
		if rc := query(t, udp, "allowed.test.", dns.TypeA); rc != dns.RcodeSuccess {
			t.Fatalf("query %d within the burst: %s", i, dns.RcodeToString[rc])
		}
	}
	// Names differ, as a tunnel's do; so do verdicts the names would get.
	for _, name := range []string{"allowed.test.", "x1.wild.test.", "x2.wild.test.", "denied.test."} {
		if rc := query(t, udp, name, dns.TypeA); rc != dns.RcodeRefused {
			t.Errorf("%s past the burst: %s, want REFUSED", name, dns.RcodeToString[rc])
		}
	}
	if n := up.count("allowed.test."); n != 3 || up.asked("x1.wild.test.") || up.asked("x2.wild.test.") {
		t.Errorf("upstream asked allowed.test %d times (want 3), x1/x2.wild.test %v/%v", n, up.asked("x1.wild.test."), up.asked("x2.wild.test."))
	}
	al.Flush()
	ds := log.Decisions(t)
	if len(ds) != 5 {
		t.Fatalf("log has %d lines, want 3 allowed and one counted run of 4 refusals: %+v", len(ds), ds)
	}
	for _, d := range ds[3:] {
		if d.Verdict != audit.Deny || d.Status != dns.RcodeRefused || d.Target != "" || !strings.Contains(d.Reason, "over the query rate limit (1e-09/s, burst 3)") {
			t.Errorf("logged %+v, want a rate-limit refusal without a name", d)
		}
	}
	if ds[3].Repeated != 0 || ds[4].Repeated != 3 {
		t.Errorf("repeated counts %d and %d, want 0 and 3", ds[3].Repeated, ds[4].Repeated)
	}
}

// A name admitted by a wildcard carries at most MaxWildcardBytes of the
// guest's choosing before the rule's suffix; longer ones are REFUSED and
// never reach the upstream. A rule naming the host exactly, or a narrower
// wildcard, admits it.
func TestWildcardNameCap(t *testing.T) {
	up, upAddr := newUpstream(t)
	long := strings.Repeat("a", 40) + "." + strings.Repeat("b", 40) // 81 bytes
	allow := append(slices.Clone(testAllow), long+".exact.wild.test", "*.deep.wild.test")
	udp, _, log, al := startServerWith(t, upAddr, allow, Options{})
	tests := []struct {
		name  string
		rcode int
	}{
		{"a.wild.test.", dns.RcodeSuccess},
		{strings.Repeat("c", 63) + ".wild.test.", dns.RcodeSuccess},                                 // 63 bytes
		{strings.Repeat("c", 31) + "." + strings.Repeat("d", 31) + ".wild.test.", dns.RcodeSuccess}, // 63 with the dot
		{strings.Repeat("c", 32) + "." + strings.Repeat("d", 31) + ".wild.test.", dns.RcodeRefused}, // 64
		{long + ".wild.test.", dns.RcodeRefused},
		{long + ".exact.wild.test.", dns.RcodeSuccess},                   // named exactly
		{strings.Repeat("e", 60) + ".deep.wild.test.", dns.RcodeSuccess}, // 60 under *.deep
		{strings.Repeat("e", 60) + "." + strings.Repeat("f", 3) + ".deep.wild.test.", dns.RcodeRefused},
	}
	for _, tt := range tests {
		if rc := query(t, udp, tt.name, dns.TypeA); rc != tt.rcode {
			t.Errorf("%s (%d bytes): %s, want %s", tt.name, len(tt.name), dns.RcodeToString[rc], dns.RcodeToString[tt.rcode])
		}
		if asked := up.asked(tt.name); asked != (tt.rcode == dns.RcodeSuccess) {
			t.Errorf("%s: upstream asked %v", tt.name, asked)
		}
	}
	al.Flush()
	var refused []audit.Decision
	for _, d := range log.Decisions(t) {
		if d.Status == dns.RcodeRefused {
			refused = append(refused, d)
		}
	}
	// The two over *.wild.test are one run (the rule is the target); the
	// one over *.deep.wild.test another.
	if len(refused) != 3 || refused[0].Target != "*.wild.test" || refused[1].Target != "*.wild.test" || refused[1].Repeated != 1 ||
		refused[2].Target != "*.deep.wild.test" || !strings.Contains(refused[0].Reason, "longer than 63 bytes") {
		t.Errorf("refusals logged: %+v", refused)
	}
}
