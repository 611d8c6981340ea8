package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// NewToken returns a random canary token.
func NewToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// HostCanaries are the host's canary servers for one probe run: HTTP on
// 127.0.0.1 and on every address, and UDP on every address, each answering
// the token. They also count what arrives (Arrivals): the host's own view
// of which paths worked, which a guest cannot forge. Close stops them.
type HostCanaries struct {
	Canaries
	// self marks the host's own requests (controls, barriers), so they are
	// not counted; it is never put in a plan.
	self    string
	closers []io.Closer
	wg      sync.WaitGroup
	once    sync.Once

	mu       sync.Mutex
	arrivals []Arrival
	selfSeen map[string]chan struct{} // barrier id -> closed when it arrived
}

// Arrival is one connection or datagram a host canary received.
type Arrival struct {
	Canary string     // CanaryLoopback, CanaryAny or CanaryUDP
	Local  netip.Addr // the address it arrived at
	From   string
	// Stale marks traffic of another probe run: it carried another run's
	// mark. Traffic without a mark counts: a path that connects but sends
	// nothing has still reached the host.
	Stale bool
}

// The host canaries, as Arrival.Canary names them.
const (
	CanaryLoopback = "loopback"
	CanaryAny      = "any"
	CanaryUDP      = "udp"
)

// markPrefix starts every mark a runner sends to a canary.
const markPrefix = "bottle-probe-run-"

// StartCanaries starts the host canaries on random ports, with a new token
// and run mark.
func StartCanaries() (*HostCanaries, error) {
	h := &HostCanaries{Canaries: Canaries{Token: NewToken(), Mark: markPrefix + NewToken()[:16]},
		self: markPrefix + "host-" + NewToken(), selfSeen: map[string]chan struct{}{}}
	for _, spot := range []struct {
		addr, name string
		port       *uint16
	}{{"127.0.0.1:0", CanaryLoopback, &h.Loopback}, {"0.0.0.0:0", CanaryAny, &h.Any}} {
		ln, err := net.Listen("tcp", spot.addr)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("probe: start canary on %s: %w", spot.addr, err)
		}
		*spot.port = uint16(ln.Addr().(*net.TCPAddr).Port)
		h.closers = append(h.closers, ln)
		h.wg.Add(1)
		go func() { defer h.wg.Done(); h.serveTCP(spot.name, ln) }()
	}
	pc, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("probe: start UDP canary: %w", err)
	}
	h.UDP = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	h.closers = append(h.closers, pc)
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.serveUDP(pc) }()
	return h, nil
}

// serveTCP records each connection as it is accepted, in order, then reads
// its request (for the mark) and answers the token.
func (h *HostCanaries) serveTCP(name string, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		local := addrOf(c.LocalAddr())
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			req := readRequest(c)
			if h.record(name, local, c.RemoteAddr().String(), req) {
				_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbottle-probe canary "+h.Token+"\n")
			}
		}()
	}
}

func (h *HostCanaries) serveUDP(pc net.PacketConn) {
	local := addrOf(pc.LocalAddr())
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		// An unconnected socket does not say which address a datagram hit.
		if h.record(CanaryUDP, local, from.String(), buf[:n]) {
			_, _ = pc.WriteTo([]byte("bottle-probe canary "+h.Token+"\n"), from)
		}
	}
}

// readRequest reads what a client sends first: up to a blank line, 1 KiB
// or the deadline.
func readRequest(c net.Conn) []byte {
	var b []byte
	buf := make([]byte, 512)
	for len(b) < 1024 && !bytes.Contains(b, []byte("\r\n\r\n")) {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return b
}

// record counts an arrival unless it is the host's own, and says whether
// to answer it.
func (h *HostCanaries) record(canary string, local netip.Addr, from string, req []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := bytes.Index(req, []byte(h.self)); i >= 0 {
		id := string(req[i:min(len(req), i+len(h.self)+24)])
		for k, ch := range h.selfSeen {
			if strings.HasPrefix(id, k) {
				close(ch)
				delete(h.selfSeen, k)
			}
		}
		return true
	}
	stale := false
	if i := bytes.Index(req, []byte(markPrefix)); i >= 0 {
		stale = !bytes.HasPrefix(req[i:], []byte(h.Mark))
	}
	h.arrivals = append(h.arrivals, Arrival{Canary: canary, Local: local, From: from, Stale: stale})
	return !stale
}

func addrOf(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Arrivals returns what the canaries received so far, stale traffic included.
func (h *HostCanaries) Arrivals() []Arrival {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.arrivals)
}

// HostGet fetches the any-address canary at a from the host itself and
// reports whether the token came back: the control that shows the canary
// is there to be reached at a. It is not counted as an arrival.
func (h *HostCanaries) HostGet(ctx context.Context, a netip.Addr) error {
	_, err := h.selfRequest(ctx, "tcp", netip.AddrPortFrom(a, h.Any).String(), "control")
	return err
}

// selfRequest sends a host-marked request and waits for the token.
func (h *HostCanaries) selfRequest(ctx context.Context, network, addr, id string) (chan struct{}, error) {
	mark := h.self + "-" + id + "-" + NewToken()[:8]
	seen := make(chan struct{})
	h.mu.Lock()
	h.selfSeen[mark] = seen
	h.mu.Unlock()
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return seen, fmt.Errorf("probe: canary at %s from the host: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	msg := "GET /" + mark + " HTTP/1.0\r\nHost: canary\r\n\r\n"
	if _, err := io.WriteString(c, msg); err != nil {
		return seen, fmt.Errorf("probe: canary at %s from the host: %w", addr, err)
	}
	b, _ := io.ReadAll(io.LimitReader(c, 4096))
	if !bytes.Contains(b, []byte(h.Token)) {
		return seen, fmt.Errorf("probe: canary at %s did not answer the host with its token (got %.80q)", addr, b)
	}
	return seen, nil
}

// Finish waits until every connection and datagram that reached a canary
// before it was called has been counted, then stops the canaries: a
// host-marked request goes through each, behind whatever is queued (the
// kernel hands them over in order), and the connections still being read
// are waited for.
func (h *HostCanaries) Finish(ctx context.Context) error {
	var errs []error
	for _, port := range []uint16{h.Loopback, h.Any} {
		if _, err := h.selfRequest(ctx, "tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String(), "barrier"); err != nil {
			errs = append(errs, err)
		}
	}
	// UDP: a datagram to ourselves, read after those queued before it.
	mark := h.self + "-barrier-udp"
	seen := make(chan struct{})
	h.mu.Lock()
	h.selfSeen[mark] = seen
	h.mu.Unlock()
	if c, err := net.Dial("udp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), h.UDP).String()); err == nil {
		_, _ = io.WriteString(c, mark)
		c.Close()
		select {
		case <-seen:
		case <-time.After(3 * time.Second):
			errs = append(errs, errors.New("probe: the UDP canary never saw the host's own datagram"))
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	} else {
		errs = append(errs, fmt.Errorf("probe: UDP canary barrier: %w", err))
	}
	h.Close()
	return errors.Join(errs...)
}

// Close stops every canary and waits for them.
func (h *HostCanaries) Close() {
	h.once.Do(func() {
		for _, c := range h.closers {
			_ = c.Close()
		}
	})
	h.wg.Wait()
}

// DNSCanary is an upstream resolver for tests: bundles forward allowlisted
// names to it. It answers names in its zone table, NXDOMAIN otherwise, and
// remembers every name it was asked, so a test can show an exfiltration
// nonce never reached it.
type DNSCanary struct {
	Addr  string // host:port it serves on, UDP and TCP
	zone  map[string][]netip.Addr
	mu    sync.Mutex
	asked []string
	srvs  []*dns.Server
}

// StartDNSCanary serves zone (name to addresses) on addr, UDP and TCP. Use
// port 0 for a random port, the same for both.
func StartDNSCanary(addr string, zone map[string][]netip.Addr) (*DNSCanary, error) {
	c := &DNSCanary{zone: map[string][]netip.Addr{}}
	for n, a := range zone {
		c.zone[dns.CanonicalName(n)] = a
	}
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 20 { // find a port free for both protocols
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return nil, fmt.Errorf("probe: dns canary: %w", err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("probe: dns canary: %w", err)
	}
	c.Addr = pc.LocalAddr().String()
	c.srvs = []*dns.Server{{PacketConn: pc, Handler: c}, {Listener: ln, Handler: c}}
	for _, s := range c.srvs {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
	}
	return c, nil
}

// ServeDNS implements dns.Handler.
func (c *DNSCanary) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	if len(q.Question) == 1 {
		name := dns.CanonicalName(q.Question[0].Name)
		c.mu.Lock()
		c.asked = append(c.asked, name)
		c.mu.Unlock()
		addrs, ok := c.zone[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, a := range addrs {
			hdr := dns.RR_Header{Name: q.Question[0].Name, Class: dns.ClassINET, Ttl: 5}
			switch {
			case a.Is4() && q.Question[0].Qtype == dns.TypeA:
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
			case a.Is6() && q.Question[0].Qtype == dns.TypeAAAA:
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
	}
	_ = w.WriteMsg(m)
}

// Seen reports whether any name asked contains s (case-insensitive).
func (c *DNSCanary) Seen(s string) bool {
	s = strings.ToLower(s)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.asked {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Asked returns every name asked so far.
func (c *DNSCanary) Asked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.asked...)
}

// Close stops the canary.
func (c *DNSCanary) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, s := range c.srvs {
		errs = append(errs, s.ShutdownContext(ctx))
	}
	return errors.Join(errs...)
}
