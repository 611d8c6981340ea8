package egress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit/audittest"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/policy"
)

// fakeResolver answers from a map; no test ever asks a real resolver. It
// answers only rooted names ("origin.test."): a name without the final dot
// would let a real resolver append resolv.conf search domains.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if name, rooted := strings.CutSuffix(host, "."); rooted {
		if a, ok := f[name]; ok {
			return a, nil
		}
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var testResolver = fakeResolver{
	"origin.test": {netip.MustParseAddr("127.0.0.1")},
	"rebind.test": {netip.MustParseAddr("127.0.0.1")},
	"ten.test":    {netip.MustParseAddr("10.0.0.1")},
	"meta.test":   {netip.MustParseAddr("169.254.169.254")},
	"mapped.test": {netip.MustParseAddr("::ffff:127.0.0.1")},
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serve runs a proxy on ln until the test ends and checks it stops cleanly.
func serve(t *testing.T, ln net.Listener, allow []string, mod func(*Options)) *audittest.Buffer {
	t.Helper()
	pol, err := policy.New(allow, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := &audittest.Buffer{}
	opts := Options{
		Policy:   pol,
		Audit:    audit.New(buf, "bottle-test"),
		Log:      testr.New(t),
		Resolver: testResolver,
	}
	if mod != nil {
		mod(&opts)
	}
	px, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- px.Serve(ctx, ln) }()
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
	return buf
}

// origin is a local HTTP server that reports what it received.
func origin(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "origin host=%s path=%s proxyauth=%q body=%s", r.Host, r.URL.Path, r.Header.Get("Proxy-Authorization"), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// exchange sends raw bytes to the proxy and reads one response.
func exchange(t *testing.T, proxy, raw string) (*http.Response, string, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	method := strings.SplitN(raw, " ", 2)[0]
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response to %q: %v", raw, err)
	}
	if method == http.MethodConnect && resp.StatusCode == http.StatusOK {
		return resp, "", c, br
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), c, br
}

func TestForward(t *testing.T) {
	org := origin(t)
	op := portOf(t, org.Listener.Addr().String())
	tests := []struct {
		name       string
		allow      []string
		raw        string
		wantStatus int
		wantBody   string // substring
		wantReason string // substring of the logged reason
	}{
		{"ip literal listed", []string{"127.0.0.1:" + op},
			"GET http://127.0.0.1:" + op + "/a HTTP/1.1\r\nHost: 127.0.0.1:" + op + "\r\n\r\n",
			200, "origin host=127.0.0.1:" + op + " path=/a", "rule 127.0.0.1:" + op},
		{"name to loopback with literal rule", []string{"origin.test:" + op, "127.0.0.1:" + op},
			"GET http://origin.test:" + op + "/b HTTP/1.1\r\nHost: origin.test:" + op + "\r\n\r\n",
			200, "origin host=origin.test:" + op + " path=/b", "rule origin.test:" + op},
		{"host header case and trailing dot", []string{"origin.test:" + op, "127.0.0.1:" + op},
			"GET http://origin.test:" + op + "/ HTTP/1.1\r\nHost: ORIGIN.TEST.:" + op + "\r\n\r\n",
			200, "origin host=", "rule"},
		{"post body and proxy credentials stripped", []string{"127.0.0.1:" + op},
			"POST http://127.0.0.1:" + op + "/p HTTP/1.1\r\nHost: 127.0.0.1:" + op + "\r\nProxy-Authorization: Basic c2VjcmV0\r\nContent-Length: 5\r\n\r\nhello",
			200, `proxyauth="" body=hello`, "rule"},
		{"name to loopback without literal rule", []string{"rebind.test:" + op},
			"GET http://rebind.test:" + op + "/ HTTP/1.1\r\nHost: rebind.test:" + op + "\r\n\r\n",
			403, "loopback", "address 127.0.0.1 refused: 127.0.0.0/8 reaches the host's loopback"},
		{"name to mapped loopback", []string{"mapped.test:" + op},
			"GET http://mapped.test:" + op + "/ HTTP/1.1\r\nHost: mapped.test:" + op + "\r\n\r\n",
			403, "loopback", "loopback"},
		{"name to private", []string{"ten.test"},
			"GET http://ten.test/ HTTP/1.1\r\nHost: ten.test\r\n\r\n",
			403, "private", "RFC 1918"},
		{"name to metadata", []string{"meta.test"},
			"GET http://meta.test/latest/meta-data/ HTTP/1.1\r\nHost: meta.test\r\n\r\n",
			403, "metadata", "link-local"},
		{"not allowlisted", []string{"127.0.0.1:" + op},
			"GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n",
			403, "not in the egress allowlist", "not in the egress allowlist"},
		{"ip literal not listed", []string{"origin.test:" + op},
			"GET http://127.0.0.1:" + op + "/ HTTP/1.1\r\nHost: 127.0.0.1:" + op + "\r\n\r\n",
			403, "not in the egress allowlist", "not in the egress allowlist"},
		{"port not allowed", []string{"origin.test:" + op, "127.0.0.1:" + op},
			"GET http://origin.test:81/ HTTP/1.1\r\nHost: origin.test:81\r\n\r\n",
			403, "not in the egress allowlist", "origin.test:81"},
		{"host header names another host", []string{"origin.test:" + op, "127.0.0.1:" + op},
			"GET http://origin.test:" + op + "/ HTTP/1.1\r\nHost: evil.test\r\n\r\n",
			403, "Host header", "Host header does not match"},
		{"host header names another port", []string{"origin.test:" + op, "127.0.0.1:" + op},
			"GET http://origin.test:" + op + "/ HTTP/1.1\r\nHost: origin.test\r\n\r\n",
			403, "Host header", "Host header does not match"},
		{"two host headers", []string{"origin.test:" + op, "127.0.0.1:" + op},
			"GET http://origin.test:" + op + "/ HTTP/1.1\r\nHost: origin.test:" + op + "\r\nHost: evil.test\r\n\r\n",
			400, "malformed", "malformed request"}, // net/http refuses it first; checkHost would too
		{"missing host header", []string{"127.0.0.1:" + op},
			"GET http://127.0.0.1:" + op + "/ HTTP/1.1\r\n\r\n",
			403, "Host", "missing Host header"},
		{"origin form to the proxy itself", []string{"127.0.0.1:" + op},
			"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
			400, "not a proxy request", "not a proxy request"},
		{"https absolute uri", []string{"origin.test"},
			"GET https://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n",
			400, "CONNECT", "only http://"},
		{"decimal address", []string{"127.0.0.1:" + op},
			"GET http://2130706433:" + op + "/ HTTP/1.1\r\nHost: 2130706433:" + op + "\r\n\r\n",
			403, "bad target", "numeric address"},
		{"octal address", []string{"127.0.0.1:" + op},
			"GET http://0177.0.0.1:" + op + "/ HTTP/1.1\r\nHost: 0177.0.0.1:" + op + "\r\n\r\n",
			403, "bad target", "numeric address"},
		{"hex short address", []string{"127.0.0.1:" + op},
			"GET http://0x7f.1:" + op + "/ HTTP/1.1\r\nHost: 0x7f.1:" + op + "\r\n\r\n",
			403, "bad target", "numeric address"},
		{"tinyproxy stats name", []string{"127.0.0.1:" + op},
			"GET http://tinyproxy.stats/ HTTP/1.1\r\nHost: tinyproxy.stats\r\n\r\n",
			403, "not in the egress allowlist", "not in the egress allowlist"},
		{"malformed", []string{"127.0.0.1:" + op},
			"GARBAGE\r\n\r\n",
			400, "malformed", "malformed request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			log := serve(t, ln, tt.allow, nil)
			resp, body, _, _ := exchange(t, ln.Addr().String(), tt.raw)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			d := log.Last(t)
			wantVerdict := audit.Deny
			if tt.wantStatus == 200 {
				wantVerdict = audit.Allow
			}
			if d.Verdict != wantVerdict || !strings.Contains(d.Reason, tt.wantReason) || d.Status != tt.wantStatus {
				t.Errorf("logged %+v, want verdict %s, status %d, reason containing %q", d, wantVerdict, tt.wantStatus, tt.wantReason)
			}
			if d.Bottle != "bottle-test" || d.Daemon != "egress" || !strings.HasPrefix(d.Client, "127.0.0.1:") {
				t.Errorf("logged %+v, want bottle, daemon and client filled in", d)
			}
			if strings.Contains(log.String(), "c2VjcmV0") {
				t.Error("a header value reached the decision log")
			}
		})
	}
}

func TestConnect(t *testing.T) {
	org := origin(t)
	op := portOf(t, org.Listener.Addr().String())
	tests := []struct {
		name       string
		allow      func(proxyPort string) []string
		target     func(proxyPort string) string
		wantStatus int
		wantReason string
	}{
		{"ip literal listed",
			func(string) []string { return []string{"127.0.0.1:" + op} },
			func(string) string { return "127.0.0.1:" + op }, 200, "rule 127.0.0.1:" + op},
		{"name with literal rule",
			func(string) []string { return []string{"origin.test:" + op, "127.0.0.1:" + op} },
			func(string) string { return "ORIGIN.test.:" + op }, 200, "rule origin.test:" + op},
		{"name to loopback without literal rule",
			func(string) []string { return []string{"rebind.test:" + op} },
			func(string) string { return "rebind.test:" + op }, 403, "loopback"},
		{"the proxy itself, even when listed",
			func(pp string) []string { return []string{"127.0.0.1:" + pp, "[::1]:" + pp, "0.0.0.0:" + pp} },
			func(pp string) string { return "127.0.0.1:" + pp }, 403, "bundle itself"},
		{"the proxy itself over ::1",
			func(pp string) []string { return []string{"[::1]:" + pp} },
			func(pp string) string { return "[::1]:" + pp }, 403, "bundle itself"},
		{"the proxy itself over 0.0.0.0",
			func(pp string) []string { return []string{"0.0.0.0:" + pp} },
			func(pp string) string { return "0.0.0.0:" + pp }, 403, "bundle itself"},
		{"the proxy itself by a name",
			func(pp string) []string { return []string{"origin.test:" + pp, "127.0.0.1:" + pp} },
			func(pp string) string { return "origin.test:" + pp }, 403, "bundle itself"},
		{"port not listed",
			func(string) []string { return []string{"origin.test", "127.0.0.1"} },
			func(string) string { return "origin.test:22" }, 403, "not in the egress allowlist"},
		{"not allowlisted",
			func(string) []string { return []string{"origin.test"} },
			func(string) string { return "example.test:443" }, 403, "not in the egress allowlist"},
		{"no port",
			func(string) []string { return []string{"origin.test"} },
			func(string) string { return "origin.test" }, 403, "port required"},
		{"decimal", nil, func(string) string { return "2130706433:443" }, 403, "numeric"},
		{"octal", nil, func(string) string { return "0177.0.0.1:443" }, 403, "numeric"},
		{"hex", nil, func(string) string { return "0x7f.1:443" }, 403, "numeric"},
		{"mapped loopback", nil, func(string) string { return "[::ffff:127.0.0.1]:443" }, 403, "not in the egress allowlist"},
		{"unspecified", nil, func(string) string { return "0.0.0.0:443" }, 403, "not in the egress allowlist"},
		{"metadata", nil, func(string) string { return "169.254.169.254:80" }, 403, "not in the egress allowlist"},
		{"ip6-localhost name", nil, func(string) string { return "ip6-localhost:443" }, 403, "not in the egress allowlist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			pp := portOf(t, ln.Addr().String())
			var allow []string
			if tt.allow != nil {
				allow = tt.allow(pp)
			}
			log := serve(t, ln, allow, nil)
			target := tt.target(pp)
			resp, body, c, br := exchange(t, ln.Addr().String(), "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("CONNECT %s: %d %q, want %d", target, resp.StatusCode, body, tt.wantStatus)
			}
			d := log.Last(t)
			if !strings.Contains(d.Reason, tt.wantReason) || d.Method != http.MethodConnect {
				t.Errorf("logged %+v, want CONNECT with reason containing %q", d, tt.wantReason)
			}
			if tt.wantStatus != 200 {
				if d.Verdict != audit.Deny {
					t.Errorf("logged verdict %q, want deny", d.Verdict)
				}
				return
			}
			// Data must come back through the tunnel.
			io.WriteString(c, "GET /through HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			inner, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("read through tunnel: %v", err)
			}
			got, _ := io.ReadAll(inner.Body)
			if !strings.Contains(string(got), "path=/through") {
				t.Errorf("through tunnel got %q", got)
			}
			if d.Verdict != audit.Allow || d.Addr != "127.0.0.1:"+op {
				t.Errorf("logged %+v, want allow dialling 127.0.0.1:%s", d, op)
			}
		})
	}
}

// TestClients drives the proxy with Go's own client, as a guest tool would:
// http:// as absolute URIs and https:// through CONNECT with real TLS.
func TestClients(t *testing.T) {
	plain := origin(t)
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure hello")
	}))
	t.Cleanup(secure.Close)
	ln := listen(t)
	serve(t, ln, []string{"origin.test:" + portOf(t, plain.Listener.Addr().String()), "127.0.0.1:" + portOf(t, plain.Listener.Addr().String()),
		"127.0.0.1:" + portOf(t, secure.Listener.Addr().String())}, nil)
	proxyURL := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	tlsConf := secure.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL),
		TLSClientConfig: tlsConf,
	}}
	t.Cleanup(client.CloseIdleConnections)
	for _, u := range []struct{ url, want string }{
		{"http://origin.test:" + portOf(t, plain.Listener.Addr().String()) + "/x", "host=origin.test:"},
		{secure.URL + "/", "secure hello"},
	} {
		resp, err := client.Get(u.url)
		if err != nil {
			t.Fatalf("GET %s: %v", u.url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), u.want) {
			t.Errorf("GET %s: %d %q, want 200 containing %q", u.url, resp.StatusCode, body, u.want)
		}
	}
	// An unlisted https target fails at CONNECT.
	if _, err := client.Get("https://example.test/"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("GET https://example.test/: %v, want a Forbidden CONNECT", err)
	}
}

func TestMaxTunnels(t *testing.T) {
	org := origin(t)
	op := portOf(t, org.Listener.Addr().String())
	ln := listen(t)
	log := serve(t, ln, []string{"127.0.0.1:" + op}, func(o *Options) { o.MaxTunnels = 2 })
	connect := "CONNECT 127.0.0.1:" + op + " HTTP/1.1\r\nHost: x\r\n\r\n"
	var open []net.Conn
	for i := 0; i < 2; i++ {
		resp, _, c, _ := exchange(t, ln.Addr().String(), connect)
		if resp.StatusCode != 200 {
			t.Fatalf("tunnel %d: %d, want 200", i, resp.StatusCode)
		}
		open = append(open, c)
	}
	resp, body, _, _ := exchange(t, ln.Addr().String(), connect)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "too many tunnels") {
		t.Fatalf("third tunnel: %d %q, want 503 too many tunnels", resp.StatusCode, body)
	}
	if d := log.Last(t); d.Verdict != audit.Deny || d.Status != 503 {
		t.Errorf("logged %+v, want a 503 deny", d)
	}
	// Closing a tunnel frees its slot.
	open[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, _, _, _ := exchange(t, ln.Addr().String(), connect)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed after closing a tunnel: still %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLimits(t *testing.T) {
	ln := listen(t)
	serve(t, ln, []string{"origin.test"}, func(o *Options) {
		o.HeaderTimeout = 200 * time.Millisecond
		o.MaxHeaderBytes = 1024
	})
	resp, _, _, _ := exchange(t, ln.Addr().String(),
		"GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nX-Pad: "+strings.Repeat("a", 2000)+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: %d, want 431", resp.StatusCode)
	}
	start := time.Now()
	resp, _, _, _ = exchange(t, ln.Addr().String(), "GET http://origin.test/ HTTP/1.1\r\nHost: orig")
	if resp.StatusCode != http.StatusBadRequest || time.Since(start) > 3*time.Second {
		t.Errorf("stalled header: %d after %v, want 400 after the header timeout", resp.StatusCode, time.Since(start))
	}
}

func TestCheckHost(t *testing.T) {
	target := func(s string) policy.Target {
		tg, err := policy.ParseTarget(s, 80)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	tests := []struct {
		target string
		hosts  []string
		http11 bool
		ok     bool
	}{
		{"allowed.test", []string{"allowed.test"}, true, true},
		{"allowed.test", []string{"allowed.test:80"}, true, true},
		{"allowed.test:80", []string{"ALLOWED.TEST."}, true, true},
		{"allowed.test:8080", []string{"allowed.test:8080"}, true, true},
		{"allowed.test:8080", []string{"allowed.test"}, true, false},
		{"allowed.test", []string{"allowed.test:8080"}, true, false},
		{"allowed.test", []string{"evil.test"}, true, false},
		{"allowed.test", []string{"evil-allowed.test"}, true, false},
		{"allowed.test", []string{"allowed.test.evil.test"}, true, false},
		{"allowed.test", []string{"allowed.test", "evil.test"}, true, false},
		{"allowed.test", []string{"allowed.test", "allowed.test"}, true, false},
		{"allowed.test", nil, true, false},
		{"allowed.test", nil, false, true},
		{"allowed.test", []string{""}, true, false},
		{"1.2.3.4", []string{"1.2.3.4"}, true, true},
		{"1.2.3.4", []string{"1.2.3.5"}, true, false},
		{"[::ffff:1.2.3.4]", []string{"1.2.3.4"}, true, true},
		{"1.2.3.4", []string{"16909060"}, true, false},
		{"bücher.test", []string{"xn--bcher-kva.test"}, true, true},
	}
	for _, tt := range tests {
		got := checkHost(target(tt.target), tt.hosts, tt.http11) == ""
		if got != tt.ok {
			t.Errorf("checkHost(%s, %q) ok = %v, want %v", tt.target, tt.hosts, got, tt.ok)
		}
	}
}

func TestHeaderEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27},
		{"GET / HTTP/1.1\nHost: a\n\nbody", 24},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1},
		{"", -1},
	}
	for _, tt := range tests {
		if got := headerEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("headerEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestMaxConns checks that connections past MaxConns, even ones that never
// send a byte, are answered 503 and logged, and that a freed slot is
// reused.
func TestMaxConns(t *testing.T) {
	ln := listen(t)
	log := serve(t, ln, []string{"origin.test"}, func(o *Options) { o.MaxConns = 2 })
	var idle []net.Conn
	for range 2 {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	// The proxy accepts in order; wait until both slots are taken.
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, body, _, _ := exchange(t, ln.Addr().String(), "GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n")
		if resp.StatusCode == http.StatusServiceUnavailable {
			if !strings.Contains(body, "too many connections") {
				t.Errorf("503 body %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("third connection got %d, want 503", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := log.Last(t); d.Verdict != audit.Deny || d.Status != 503 || d.Reason != "too many connections" {
		t.Errorf("logged %+v, want a 503 deny", d)
	}
	idle[0].Close()
	deadline = time.Now().Add(3 * time.Second)
	for {
		resp, _, _, _ := exchange(t, ln.Addr().String(), "GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n")
		if resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not freed after a connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleTunnel checks that a tunnel in which no byte moves is closed
// after IdleTimeout and its slot freed.
func TestIdleTunnel(t *testing.T) {
	org := listen(t) // accepts, then never speaks
	op := portOf(t, org.Addr().String())
	go func() {
		for {
			c, err := org.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	t.Cleanup(func() { org.Close() })
	ln := listen(t)
	serve(t, ln, []string{"127.0.0.1:" + op}, func(o *Options) {
		o.IdleTimeout = 300 * time.Millisecond
		o.MaxTunnels = 1
	})
	connect := "CONNECT 127.0.0.1:" + op + " HTTP/1.1\r\nHost: x\r\n\r\n"
	resp, _, c, br := exchange(t, ln.Addr().String(), connect)
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("idle tunnel read = %v, want it closed by the proxy", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Errorf("idle tunnel closed after %v, want about 300ms", el)
	}
	// Its slot is free again.
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, _, _, _ := exchange(t, ln.Addr().String(), connect)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunnel slot not freed: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDialsResolvedAddress checks that the gate never hands a name to the
// dialler: it dials exactly an address it resolved and checked.
func TestDialsResolvedAddress(t *testing.T) {
	org := origin(t)
	op := portOf(t, org.Listener.Addr().String())
	var mu sync.Mutex
	var dialled []string
	ln := listen(t)
	serve(t, ln, []string{"origin.test:" + op, "127.0.0.1:" + op}, func(o *Options) {
		o.Resolver = fakeResolver{"origin.test": {netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("127.0.0.1")}}
		o.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialled = append(dialled, addr)
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	})
	resp, body, _, _ := exchange(t, ln.Addr().String(), "GET http://origin.test:"+op+"/ HTTP/1.1\r\nHost: origin.test:"+op+"\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	// 10.0.0.9 is private and not named by a rule: never dialled.
	if len(dialled) != 1 || dialled[0] != "127.0.0.1:"+op {
		t.Errorf("dialled %q, want only 127.0.0.1:%s", dialled, op)
	}
}

// A name a wildcard admits carries at most MaxWildcardBytes of the guest's
// choosing before the rule's suffix: the gate's own lookup of a longer one
// would be a DNS tunnel too, so it is refused before any lookup.
func TestWildcardNameCap(t *testing.T) {
	long := strings.Repeat("a", 40) + "." + strings.Repeat("b", 24) // 65 bytes
	tests := []struct {
		target string
		status int
		reason string
	}{
		{long + ".wild.test:443", 403, "name under *.wild.test longer than 63 bytes before its suffix"},
		{strings.Repeat("c", 63) + ".wild.test:443", 502, ""},       // past the cap; the lookup fails
		{strings.Repeat("c", 60) + ".named.wild.test:443", 502, ""}, // 66 bytes under *.wild.test, 60 under *.named.wild.test
	}
	for _, tt := range tests {
		ln := listen(t)
		log := serve(t, ln, []string{"*.wild.test", "*.named.wild.test"}, nil)
		resp, body, _, _ := exchange(t, ln.Addr().String(), "CONNECT "+tt.target+" HTTP/1.1\r\nHost: "+tt.target+"\r\n\r\n")
		if resp.StatusCode != tt.status {
			t.Errorf("CONNECT %s: %d %q, want %d", tt.target, resp.StatusCode, body, tt.status)
			continue
		}
		if d := log.Last(t); d.Verdict != audit.Deny || !strings.Contains(d.Reason, tt.reason) {
			t.Errorf("CONNECT %s: logged %+v, want a denial with reason containing %q", tt.target, d, tt.reason)
		}
	}
}
