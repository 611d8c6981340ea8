// Package egress is a bottle's egress gate: an HTTP proxy that forwards
// absolute-URI http:// requests and CONNECT tunnels to allowlisted hosts
// only. It resolves names itself, checks every address before dialling it
// and dials exactly that address, so neither the guest nor DNS can steer it
// to the bundle, the host or a private network.
package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/policy"
)

// Resolver looks up a name's addresses; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults for the zero fields of Options.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultMaxTunnels     = 256
	DefaultMaxConns       = 1024
	DefaultMaxHeaderBytes = 32 << 10

	maxResponseHeaderBytes = 1 << 20

	// maxRejecting bounds connections being answered "too many
	// connections" at once, and rejectLinger how long each may take.
	maxRejecting = 64
	rejectLinger = time.Second
)

// Options configure a Proxy. Only Policy is required.
type Options struct {
	Policy *policy.Policy
	// Audit receives one line per request; nil discards.
	Audit *audit.Log
	Log   logr.Logger
	// Resolver defaults to the pure-Go resolver reading /etc/resolv.conf.
	Resolver Resolver
	// DialContext defaults to a net.Dialer; it is only ever given an IP.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// Self lists the bundle's own endpoints. A target on one of their
	// ports at one of their addresses, a LocalAddrs address, loopback or
	// an unspecified address is the bundle itself and is refused whatever
	// the rules say. Serve adds its listener's address.
	Self       []netip.AddrPort
	LocalAddrs []netip.Addr

	DialTimeout   time.Duration
	HeaderTimeout time.Duration
	// IdleTimeout drops a tunnel or transfer when no byte moved for this long.
	IdleTimeout time.Duration
	// MaxTunnels bounds CONNECT tunnels and in-flight plain-HTTP forwards
	// together; past it clients get 503.
	MaxTunnels int
	// MaxConns bounds open client connections, including ones still
	// sending their header.
	MaxConns       int
	MaxHeaderBytes int
	// MaxWildcardBytes bounds the part of a name a wildcard rule admits
	// before its suffix (see policy.WildcardPrefix): the gate looks names
	// up, so a longer one would carry data out through DNS. Default
	// policy.DefaultMaxWildcardBytes.
	MaxWildcardBytes int
}

// Proxy is the egress gate. Create it with New and run it with Serve.
type Proxy struct {
	opts      Options
	tunnels   chan struct{}
	conns     chan struct{}
	rejecting chan struct{}
	serving   atomic.Int32
}

// New checks opts and fills in defaults.
func New(opts Options) (*Proxy, error) {
	if opts.Policy == nil {
		return nil, errors.New("egress: new proxy: no policy")
	}
	if opts.Resolver == nil {
		opts.Resolver = &net.Resolver{PreferGo: true}
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = DefaultHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxWildcardBytes <= 0 {
		opts.MaxWildcardBytes = policy.DefaultMaxWildcardBytes
	}
	if opts.MaxTunnels <= 0 {
		opts.MaxTunnels = DefaultMaxTunnels
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.DialContext == nil {
		d := &net.Dialer{Timeout: opts.DialTimeout}
		opts.DialContext = d.DialContext
	}
	return &Proxy{
		opts:      opts,
		tunnels:   make(chan struct{}, opts.MaxTunnels),
		conns:     make(chan struct{}, opts.MaxConns),
		rejecting: make(chan struct{}, maxRejecting),
	}, nil
}

// Serving reports whether Serve is accepting connections.
func (p *Proxy) Serving() bool { return p.serving.Load() > 0 }

// Serve accepts proxy clients on ln until ctx ends, then closes ln and every
// connection and returns nil once all handlers are done. It returns an
// error if ln fails for another reason.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	self := slices.Clone(p.opts.Self)
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
		self = append(self, ap)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	p.serving.Add(1)
	defer p.serving.Add(-1)
	p.opts.Log.Info("egress proxy serving", "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("egress: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.opts.Log.Error(err, "egress accept failed; retrying", "addr", ln.Addr().String(), "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		select {
		case p.conns <- struct{}{}:
		default:
			p.reject(&wg, c, "too many connections")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-p.conns }()
			p.serveConn(ctx, c, self)
		}()
	}
}

// reject answers a connection over MaxConns with 503, logging first like
// deny. Closing a socket whose request is unread makes the kernel send a
// reset that can destroy the answer before the client reads it, so the
// request is drained for a moment after a half-close. That runs in its own
// goroutine, at most maxRejecting at once; past that the connection is
// simply closed, so a flood costs neither the accept loop nor descriptors.
func (p *Proxy) reject(wg *sync.WaitGroup, c net.Conn, reason string) {
	p.opts.Audit.Record(audit.Decision{Daemon: "egress", Client: c.RemoteAddr().String(),
		Verdict: audit.Deny, Reason: reason, Status: http.StatusServiceUnavailable})
	select {
	case p.rejecting <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-p.rejecting }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(rejectLinger))
		writeStatus(c, http.StatusServiceUnavailable, reason)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// request carries one request's decision through its handling.
type request struct {
	c  *timedConn
	br *bufio.Reader
	d  audit.Decision
}

// deny logs the decision, then answers; logging first means the line
// exists by the time a client sees the answer.
func (p *Proxy) deny(r *request, status int, reason string) {
	r.d.Verdict, r.d.Reason, r.d.Status = audit.Deny, reason, status
	p.opts.Audit.Record(r.d)
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	writeStatus(r.c, status, reason)
}

func (p *Proxy) allow(r *request, rule string, addr netip.AddrPort, status int) {
	r.d.Verdict, r.d.Reason, r.d.Addr, r.d.Status = audit.Allow, "rule "+rule, addr.String(), status
	p.opts.Audit.Record(r.d)
}

func (p *Proxy) serveConn(ctx context.Context, raw net.Conn, self []netip.AddrPort) {
	c := &timedConn{Conn: raw}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	r := &request{c: c, d: audit.Decision{Daemon: "egress", Client: raw.RemoteAddr().String()}}
	// One absolute deadline for the whole header defeats slow senders.
	_ = c.SetReadDeadline(time.Now().Add(p.opts.HeaderTimeout))
	r.br = bufio.NewReaderSize(c, p.opts.MaxHeaderBytes)
	block, err := peekHeader(r.br)
	switch {
	case errors.Is(err, errHeaderTooLarge):
		p.deny(r, http.StatusRequestHeaderFieldsTooLarge, "request header too large")
		return
	case err != nil && r.br.Buffered() == 0:
		return // the client connected and left; there was no request
	case err != nil:
		p.deny(r, http.StatusBadRequest, "incomplete request header")
		return
	}
	hosts, herr := hostHeaders(block)
	req, err := http.ReadRequest(r.br)
	if err != nil || herr != nil {
		p.deny(r, http.StatusBadRequest, "malformed request")
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	c.idle = p.opts.IdleTimeout
	r.d.Method = req.Method
	if req.Method == http.MethodConnect {
		p.connect(ctx, r, req, self)
		return
	}
	p.forward(ctx, r, req, hosts, self)
}

// connect handles "CONNECT host:port": it checks the target, dials it and
// relays bytes both ways until both sides are done or idle.
func (p *Proxy) connect(ctx context.Context, r *request, req *http.Request, self []netip.AddrPort) {
	r.d.Target = req.RequestURI
	t, err := policy.ParseTarget(req.RequestURI, 0)
	if err != nil {
		p.deny(r, http.StatusForbidden, "bad CONNECT target: "+err.Error())
		return
	}
	r.d.Target = t.String()
	origin, rule, addr, ok := p.open(ctx, r, t, self)
	if !ok {
		return
	}
	defer func() { <-p.tunnels }()
	defer origin.Close()
	stop := context.AfterFunc(ctx, func() { _ = origin.Close() })
	defer stop()

	p.allow(r, rule, addr, http.StatusOK)
	if _, err := io.WriteString(r.c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan error, 2)
	// r.br may already hold bytes the client sent after the header (an
	// eager TLS ClientHello); reading through it forwards them first.
	go func() {
		err := pipe(origin, r.br, &last, p.opts.IdleTimeout)
		origin.closeWrite()
		done <- err
	}()
	go func() {
		err := pipe(r.c, origin, &last, p.opts.IdleTimeout)
		r.c.closeWrite()
		done <- err
	}()
	if err := <-done; err != nil {
		_ = r.c.Close()
		_ = origin.Close()
	}
	<-done
}

// forward handles an absolute-URI http:// request: one request per client
// connection, sent to the origin with "Connection: close". Keeping no
// connection state means every request is checked on its own and nothing
// pipelined behind it is ever sent anywhere.
func (p *Proxy) forward(ctx context.Context, r *request, req *http.Request, hosts []string, self []netip.AddrPort) {
	r.d.Target = req.RequestURI
	if req.URL.Host == "" {
		// No admin or stats page: the proxy serves nothing itself.
		p.deny(r, http.StatusBadRequest, "not a proxy request: use an absolute http:// URI or CONNECT")
		return
	}
	if !strings.EqualFold(req.URL.Scheme, "http") {
		p.deny(r, http.StatusBadRequest, "only http:// URIs are forwarded; use CONNECT for TLS")
		return
	}
	t, err := policy.ParseTarget(req.URL.Host, 80)
	if err != nil {
		p.deny(r, http.StatusForbidden, "bad target: "+err.Error())
		return
	}
	r.d.Target = t.String()
	if reason := checkHost(t, hosts, req.ProtoAtLeast(1, 1)); reason != "" {
		p.deny(r, http.StatusForbidden, reason)
		return
	}
	conn, rule, addr, ok := p.open(ctx, r, t, self)
	if !ok {
		return
	}
	defer func() { <-p.tunnels }()
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	removeHopHeaders(req.Header)
	// Interim 100 responses are not relayed, so do not ask for one.
	req.Header.Del("Expect")
	req.Close = true
	if err := req.Write(conn); err != nil {
		p.deny(r, http.StatusBadGateway, fmt.Sprintf("send request to %s: %v", addr, err))
		return
	}
	lr := &limitReader{r: conn, n: maxResponseHeaderBytes, limited: true}
	obr := bufio.NewReader(lr)
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(obr, req)
		if err != nil {
			p.deny(r, http.StatusBadGateway, fmt.Sprintf("read response from %s: %v", addr, err))
			return
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			p.deny(r, http.StatusBadGateway, "origin switched protocols, which is not proxied")
			return
		}
	}
	lr.limited = false
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	resp.Close = true
	p.allow(r, rule, addr, resp.StatusCode)
	if err := resp.Write(r.c); err != nil {
		p.opts.Log.V(1).Info("egress relay response ended early", "client", r.d.Client, "target", r.d.Target, "err", err.Error())
	}
}

// checkHost returns why the Host headers disagree with the request target,
// or "". Go would silently prefer the target; an origin behind a shared IP
// might prefer the header, so a mismatch is refused outright.
func checkHost(t policy.Target, hosts []string, http11 bool) string {
	switch {
	case len(hosts) > 1:
		return "several Host headers"
	case len(hosts) == 0 && http11:
		return "missing Host header"
	case len(hosts) == 0:
		return ""
	}
	h, err := policy.ParseTarget(hosts[0], 80)
	if err != nil || !h.Same(t) {
		return "Host header does not match the request target"
	}
	return ""
}

// open authorises t, takes a relay slot and dials the first acceptable
// address. On failure it has already answered and logged the client.
func (p *Proxy) open(ctx context.Context, r *request, t policy.Target, self []netip.AddrPort) (*timedConn, string, netip.AddrPort, bool) {
	rule, ok := p.opts.Policy.AllowTarget(t)
	if !ok {
		p.deny(r, http.StatusForbidden, t.String()+" is not in the egress allowlist")
		return nil, "", netip.AddrPort{}, false
	}
	if n, wild := p.opts.Policy.WildcardPrefix(t.Name); n > p.opts.MaxWildcardBytes {
		p.deny(r, http.StatusForbidden, fmt.Sprintf("name under %s longer than %d bytes before its suffix", wild, p.opts.MaxWildcardBytes))
		return nil, "", netip.AddrPort{}, false
	}
	addrs, status, reason := p.addresses(ctx, t, self)
	if len(addrs) == 0 {
		p.deny(r, status, reason)
		return nil, "", netip.AddrPort{}, false
	}
	select {
	case p.tunnels <- struct{}{}:
	default:
		p.deny(r, http.StatusServiceUnavailable, "too many tunnels")
		return nil, "", netip.AddrPort{}, false
	}
	dctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	var errs []error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, t.Port)
		c, err := p.opts.DialContext(dctx, "tcp", ap.String())
		if err == nil {
			return &timedConn{Conn: c, idle: p.opts.IdleTimeout}, rule, ap, true
		}
		errs = append(errs, err)
	}
	<-p.tunnels
	p.deny(r, http.StatusBadGateway, fmt.Sprintf("dial %s: %v", t, errors.Join(errs...)))
	return nil, "", netip.AddrPort{}, false
}

// addresses resolves t (unless it is a literal) and keeps the addresses
// the policy lets the gate dial, in resolver order. When none is left it
// returns a status and the reason for the first refusal.
func (p *Proxy) addresses(ctx context.Context, t policy.Target, self []netip.AddrPort) ([]netip.Addr, int, string) {
	cands := []netip.Addr{t.IP}
	if !t.IP.IsValid() {
		rctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
		defer cancel()
		var err error
		// Rooted, so no resolv.conf search domain is ever appended: the
		// gate must dial an address of the allowlisted name itself, and
		// the resolver daemon asks its upstream for the same rooted name.
		cands, err = p.opts.Resolver.LookupNetIP(rctx, "ip", t.Name+".")
		if err != nil {
			return nil, http.StatusBadGateway, fmt.Sprintf("resolve %s: %v", t.Name, err)
		}
	}
	var ok []netip.Addr
	reason := "no address for " + t.Name
	refused := false
	for _, a := range cands {
		a = a.Unmap()
		var why string
		if p.isSelf(a, t.Port, self) {
			why = netip.AddrPortFrom(a, t.Port).String() + " is the bundle itself"
		} else if err := p.opts.Policy.CheckDial(a, t.Port); err != nil {
			why = err.Error()
		}
		switch {
		case why == "":
			ok = append(ok, a)
		case !refused:
			reason, refused = why, true
		}
	}
	return ok, http.StatusForbidden, reason
}

func (p *Proxy) isSelf(a netip.Addr, port uint16, self []netip.AddrPort) bool {
	for _, s := range self {
		if s.Port() != port {
			continue
		}
		sa := s.Addr().Unmap()
		if a == sa || sa.IsUnspecified() || a.IsLoopback() || a.IsUnspecified() || slices.Contains(p.opts.LocalAddrs, a) {
			return true
		}
	}
	return false
}

// hopHeaders are meaningful for one connection only (RFC 9110 §7.6.1);
// Proxy-Authorization in particular must never reach an origin.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// writeStatus writes a complete short response whose body is the reason.
func writeStatus(w io.Writer, code int, reason string) {
	body := reason + "\n"
	_, _ = io.WriteString(w, "HTTP/1.1 "+strconv.Itoa(code)+" "+http.StatusText(code)+"\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n"+
		"Content-Length: "+strconv.Itoa(len(body))+"\r\n"+
		"Connection: close\r\n\r\n"+body)
}
