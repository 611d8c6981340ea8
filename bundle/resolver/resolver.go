// Package resolver is a bottle's DNS server: it answers only names the
// egress allowlist admits, forwards those to an upstream resolver and drops
// answers that point into refused ranges (DNS rebinding). A name that is
// not allowlisted never leaves the bundle. Under a wildcard rule the guest
// chooses the start of a name, which does leave: a tunnel, bounded by a
// cap on those bytes and a per-bottle query rate.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/policy"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Defaults for the zero fields of Options.
const (
	DefaultTimeout     = 3 * time.Second
	DefaultMaxInflight = 256
	// DefaultMaxTCPConns bounds open TCP client connections; further
	// clients wait in the kernel's accept queue until one closes.
	DefaultMaxTCPConns = 128
	// edns0Size is the DNS flag day 2020 buffer size: big enough for
	// ordinary answers, small enough to avoid IP fragmentation.
	edns0Size = 1232
	// DefaultQueryRate and DefaultQueryBurst bound the queries one bottle
	// may send: far above what tools resolving the hosts they talk to ask
	// (a package install is a few hundred lookups at most), far below what
	// a tunnel through an allowed wildcard wants.
	DefaultQueryRate  rate.Limit = 100
	DefaultQueryBurst            = 1000
)

// Options configure a Server. Policy and Upstream are required.
type Options struct {
	Policy *policy.Policy
	// Upstream is the recursive resolver, host:port.
	Upstream string
	Audit    *audit.Log
	Log      logr.Logger
	// Timeout bounds one upstream exchange.
	Timeout time.Duration
	// MaxInflight bounds concurrent upstream queries; past it clients get
	// SERVFAIL rather than queueing without limit.
	MaxInflight int
	// MaxTCPConns bounds open TCP client connections.
	MaxTCPConns int
	// QueryRate and QueryBurst are a token bucket over every query the
	// bottle sends (a bundle serves one bottle); past it queries are
	// REFUSED. rate.Inf lifts it.
	QueryRate  rate.Limit
	QueryBurst int
	// MaxWildcardBytes bounds the part of a name a wildcard rule admits
	// before its suffix (see policy.WildcardPrefix); longer names are
	// REFUSED without reaching the upstream. Default
	// policy.DefaultMaxWildcardBytes.
	MaxWildcardBytes int
}

// Server answers DNS queries; it is a dns.Handler.
type Server struct {
	opts     Options
	udp, tcp *dns.Client
	inflight chan struct{}
	serving  atomic.Int32
	// limit is refilled lazily by each query: nothing runs at rest.
	limit *rate.Limiter
}

var _ dns.Handler = (*Server)(nil)

// New checks opts and fills in defaults.
func New(opts Options) (*Server, error) {
	if opts.Policy == nil {
		return nil, errors.New("resolver: new server: no policy")
	}
	if _, _, err := net.SplitHostPort(opts.Upstream); err != nil {
		return nil, fmt.Errorf("resolver: new server: upstream %q: %w", opts.Upstream, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = DefaultMaxInflight
	}
	if opts.MaxTCPConns <= 0 {
		opts.MaxTCPConns = DefaultMaxTCPConns
	}
	if opts.QueryRate <= 0 {
		opts.QueryRate = DefaultQueryRate
	}
	if opts.QueryBurst <= 0 {
		opts.QueryBurst = DefaultQueryBurst
	}
	if opts.MaxWildcardBytes <= 0 {
		opts.MaxWildcardBytes = policy.DefaultMaxWildcardBytes
	}
	return &Server{
		opts:     opts,
		udp:      &dns.Client{Net: "udp", Timeout: opts.Timeout, UDPSize: edns0Size},
		tcp:      &dns.Client{Net: "tcp", Timeout: opts.Timeout},
		inflight: make(chan struct{}, opts.MaxInflight),
		limit:    rate.NewLimiter(opts.QueryRate, opts.QueryBurst),
	}, nil
}

// UpstreamFromResolvConf returns the first nameserver of a resolv.conf as
// host:port; inside a Docker container that is the embedded 127.0.0.11.
func UpstreamFromResolvConf(path string) (string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return "", fmt.Errorf("resolver: read %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return "", fmt.Errorf("resolver: read %s: no nameserver", path)
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// Serving reports whether Serve is answering on all its sockets.
func (s *Server) Serving() bool { return s.serving.Load() > 0 }

// Serve answers queries on pc (UDP) and ln (TCP), either of which may be
// nil, until ctx ends; then it shuts both down and returns nil. It returns
// an error if a socket fails.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	var servers []*dns.Server
	if pc != nil {
		// The UDP loop wakes at every read timeout (2 s by default) even
		// with no query; an idle bundle must not. Shutdown unblocks the
		// read on its own, so nothing needs the timeout.
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: s, ReadTimeout: 24 * time.Hour})
	}
	if ln != nil {
		// Accept waits for a free slot, and Close wakes it: a shutdown never
		// hangs on a full listener.
		ln = netutil.LimitListener(ln, s.opts.MaxTCPConns)
		servers = append(servers, &dns.Server{Listener: ln, Handler: s,
			ReadTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 8 * time.Second }})
	}
	if len(servers) == 0 {
		return errors.New("resolver: serve: no socket")
	}
	started := make(chan struct{}, len(servers))
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { errc <- srv.ActivateAndServe() }()
	}
	running := len(servers)
	var err error
	for n := 0; n < len(servers) && err == nil; {
		select {
		case <-started:
			n++
		case err = <-errc:
			running--
		}
	}
	if err == nil {
		s.serving.Add(1)
		s.opts.Log.Info("dns resolver serving", "upstream", s.opts.Upstream)
		select {
		case <-ctx.Done():
		case err = <-errc:
			running--
		}
		s.serving.Add(-1)
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(shut) // "not started" for one that failed
	}
	for ; running > 0; running-- {
		if e := <-errc; err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("resolver: serve: %w", err)
	}
	return nil
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	d := audit.Decision{Daemon: "dns", Client: w.RemoteAddr().String(), Verdict: audit.Deny}
	defer func() {
		d.Status = resp.Rcode
		s.opts.Audit.Record(d)
		s.write(w, req, resp)
	}()
	if !s.limit.Allow() {
		// No name in the line: a tunnel's names all differ, and one
		// counted line per run is what keeps a flood from filling the log.
		resp.Rcode, d.Reason = dns.RcodeRefused, fmt.Sprintf("over the query rate limit (%g/s, burst %d)", float64(s.opts.QueryRate), s.opts.QueryBurst)
		return
	}
	if req.Opcode != dns.OpcodeQuery {
		resp.Rcode, d.Reason = dns.RcodeNotImplemented, "opcode not supported"
		return
	}
	if len(req.Question) != 1 {
		resp.Rcode, d.Reason = dns.RcodeFormatError, "want exactly one question"
		return
	}
	q := req.Question[0]
	d.Method, d.Target = dns.TypeToString[q.Qtype], q.Name
	if q.Qclass != dns.ClassINET {
		resp.Rcode, d.Reason = dns.RcodeRefused, "class not supported"
		return
	}
	name, err := spec.NormalizeHost(q.Name)
	if err != nil || !s.opts.Policy.AllowName(name) {
		resp.Rcode, d.Reason = dns.RcodeNameError, "name not in the egress allowlist"
		return
	}
	d.Target = name
	if n, rule := s.opts.Policy.WildcardPrefix(name); n > s.opts.MaxWildcardBytes {
		// The rule, not the name, in the line: see the rate limit.
		resp.Rcode, d.Target = dns.RcodeRefused, rule
		d.Reason = fmt.Sprintf("name under the wildcard longer than %d bytes before its suffix", s.opts.MaxWildcardBytes)
		return
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT:
		// Forwarded. TXT of an allowlisted name carries no guest data out
		// (the name is fixed by the allowlist) and some tools need it.
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB:
		resp.Rcode, d.Reason = dns.RcodeRefused, "query type refused"
		return
	default:
		// HTTPS and SVCB may carry address hints the rebinding filter does
		// not parse; other types have no use in a guest. An empty NOERROR
		// (NODATA) lets stub resolvers fall back to A/AAAA at once, where
		// REFUSED would make them retry other servers first.
		d.Reason = "query type not forwarded; empty answer"
		return
	}
	s.forward(name, q.Qtype, resp, &d)
}

// forward asks the upstream and copies back the answers that pass the
// policy. If the upstream's addresses are all refused the reply is an
// empty NOERROR: the name exists, it just has no address a guest may use.
func (s *Server) forward(name string, qtype uint16, resp *dns.Msg, d *audit.Decision) {
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		resp.Rcode, d.Reason = dns.RcodeServerFailure, "too many queries in flight"
		return
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(edns0Size, false)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	r, _, err := s.udp.ExchangeContext(ctx, m, s.opts.Upstream)
	if err == nil && r.Truncated {
		r, _, err = s.tcp.ExchangeContext(ctx, m, s.opts.Upstream)
	}
	if err != nil {
		resp.Rcode, d.Reason = dns.RcodeServerFailure, "upstream: "+err.Error()
		return
	}
	resp.Rcode = r.Rcode
	var kept, dropped []string
	sawAddr := false
	for _, rr := range r.Answer {
		if rr.Header().Class != dns.ClassINET {
			continue
		}
		var ip netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(v.AAAA.To16())
		case *dns.CNAME:
			resp.Answer = append(resp.Answer, rr)
			continue
		case *dns.TXT:
			if qtype == dns.TypeTXT {
				resp.Answer = append(resp.Answer, rr)
			}
			continue
		default:
			continue // DNAME, RRSIG and the like: not needed by a stub
		}
		sawAddr = true
		if err := s.opts.Policy.CheckAnswer(ip); err != nil {
			dropped = append(dropped, err.Error())
			continue
		}
		kept = append(kept, ip.String())
		resp.Answer = append(resp.Answer, rr)
	}
	d.Addr = strings.Join(kept, ",")
	switch {
	case sawAddr && len(kept) == 0:
		resp.Answer = nil
		d.Reason = "rebinding: " + strings.Join(dropped, "; ")
	case len(dropped) > 0:
		d.Verdict, d.Reason = audit.Allow, "allowlisted; dropped "+strings.Join(dropped, "; ")
	default:
		d.Verdict, d.Reason = audit.Allow, "allowlisted"
	}
}

// write sends resp, truncated to what the client can take over UDP.
func (s *Server) write(w dns.ResponseWriter, req, resp *dns.Msg) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), edns0Size)
		resp.SetEdns0(edns0Size, false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.opts.Log.V(1).Info("dns reply failed", "client", w.RemoteAddr().String(), "err", err.Error())
	}
}
