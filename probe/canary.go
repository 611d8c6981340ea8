package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
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
// the token. Close stops them.
type HostCanaries struct {
	Canaries
	closers []io.Closer
	wg      sync.WaitGroup
}

// StartCanaries starts the host canaries on random ports.
func StartCanaries() (*HostCanaries, error) {
	h := &HostCanaries{Canaries: Canaries{Token: NewToken()}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "bottle-probe canary "+h.Token+"\n")
	})
	for _, spot := range []struct {
		addr string
		port *uint16
	}{{"127.0.0.1:0", &h.Loopback}, {"0.0.0.0:0", &h.Any}} {
		ln, err := net.Listen("tcp", spot.addr)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("probe: start canary on %s: %w", spot.addr, err)
		}
		*spot.port = uint16(ln.Addr().(*net.TCPAddr).Port)
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		h.closers = append(h.closers, srv)
		h.wg.Add(1)
		go func() { defer h.wg.Done(); _ = srv.Serve(ln) }()
	}
	pc, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("probe: start UDP canary: %w", err)
	}
	h.UDP = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	h.closers = append(h.closers, pc)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte("bottle-probe canary "+h.Token+"\n"), from)
		}
	}()
	return h, nil
}

// Close stops every canary and waits for them.
func (h *HostCanaries) Close() {
	for _, c := range h.closers {
		_ = c.Close()
	}
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
