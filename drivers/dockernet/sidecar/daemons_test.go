package sidecar

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// TestBundleRunsSelectedDaemons starts real bundle containers through the
// driver with each selection of daemons and checks that each is running,
// that exactly the selected daemons listen, on the bundle's bottle-network
// address only, that the control endpoint listens on 127.0.0.1 only, and
// that the daemons answer a guest-side client: the proxy denies with 403,
// the resolver answers NXDOMAIN over UDP and TCP.
func TestBundleRunsSelectedDaemons(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	opts := testOptions("10.215.200.0/24")
	nd, bd := newDrivers(t, cli, opts)
	_, ctlPort, _ := net.SplitHostPort(bundle.ControlAddr)

	tests := []struct {
		name    string
		daemons []string
		// want lists the sockets, "proto addr:port", with BUNDLE standing
		// for the bundle's address.
		want []string
	}{
		{"egress-dns", []string{spec.DaemonEgress, spec.DaemonDNS},
			[]string{"tcp 127.0.0.1:" + ctlPort, "tcp BUNDLE:3128", "tcp BUNDLE:53", "udp BUNDLE:53"}},
		{"egress", []string{spec.DaemonEgress}, []string{"tcp 127.0.0.1:" + ctlPort, "tcp BUNDLE:3128"}},
		{"dns", []string{spec.DaemonDNS}, []string{"tcp 127.0.0.1:" + ctlPort, "tcp BUNDLE:53", "udp BUNDLE:53"}},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Go(func() {
			bottle := inst + "-" + tt.name
			s := spec.Spec{Daemons: tt.daemons, Egress: spec.Egress{Allow: []string{"allowed.test"}}}
			n, b, err := bottleUp(ctx, t, nd, bd, inst, bottle, s)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				return
			}
			defer func() {
				if err := bd.Delete(ctx, b); err != nil {
					t.Error(err)
				}
				if err := nd.Delete(ctx, n); err != nil {
					t.Error(err)
				}
			}()
			checkBundle(ctx, t, cli, tt.name, b, tt.daemons, tt.want)
		})
	}
	wg.Wait()
	if err := bd.RemoveEgressNetwork(ctx, inst); err != nil {
		t.Error(err)
	}
	assertNoneLeft(t, cli, inst)
}

func checkBundle(ctx context.Context, t *testing.T, cli dockerAPI, name string, b bottle.Resource, daemons, want []string) {
	if b.State != bottle.StateRunning {
		t.Errorf("%s: bundle %s is %s, want running", name, b.Name, b.State)
	}
	c, err := cli.ContainerInspect(ctx, b.ID)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if c.State == nil || !c.State.Running || c.State.Health != nil {
		t.Errorf("%s: Docker reports state %+v, want running with no health check", name, c.State)
	}
	for i := range want {
		want[i] = strings.Replace(want[i], "BUNDLE", b.Addr.String(), 1)
	}
	got, err := listeningSockets(c.State.Pid)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: bundle listens on %q, want exactly %q", name, got, want)
	}

	// The host has the gateway address on a smolvm-style bottle network, so
	// it can play the guest.
	if slices.Contains(daemons, spec.DaemonEgress) {
		proxy := netip.AddrPortFrom(b.Addr, bundle.ProxyPort).String()
		for _, target := range []string{"example.test:443", bundle.ControlAddr, netip.AddrPortFrom(b.Addr, bundle.ProxyPort).String()} {
			if code := connectStatus(t, proxy, target); code != http.StatusForbidden {
				t.Errorf("%s: CONNECT %s through %s = %d, want 403", name, target, proxy, code)
			}
		}
	}
	if slices.Contains(daemons, spec.DaemonDNS) {
		for _, network := range []string{"udp", "tcp"} {
			m := new(dns.Msg)
			m.SetQuestion("evil.test.", dns.TypeA)
			r, _, err := (&dns.Client{Net: network, Timeout: 3 * time.Second}).ExchangeContext(ctx, m, netip.AddrPortFrom(b.Addr, bundle.DNSPort).String())
			if err != nil || r.Rcode != dns.RcodeNameError {
				t.Errorf("%s: %s query for evil.test = %v, %v; want NXDOMAIN", name, network, r, err)
			}
		}
	}
	// The control port is not on the bottle network.
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(b.Addr, mustPort(t, bundle.ControlAddr)).String(), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s: control endpoint reachable on the bundle address", name)
	}
}

func mustPort(t *testing.T, addr string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

// connectStatus sends CONNECT target to proxy and returns the status.
func connectStatus(t *testing.T, proxy, target string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 3*time.Second)
	if err != nil {
		t.Errorf("dial proxy %s: %v", proxy, err)
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Errorf("CONNECT %s: %v", target, err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// listeningSockets reads the network namespace of process pid from the
// host's /proc (the bundle image has no shell to ask) and lists its
// listening TCP sockets and unconnected UDP sockets as "proto addr:port",
// leaving out those of Docker's embedded resolver (127.0.0.11).
func listeningSockets(pid int) ([]string, error) {
	var out []string
	for _, f := range []struct{ file, proto, state string }{
		{"tcp", "tcp", "0A"}, {"tcp6", "tcp", "0A"}, {"udp", "udp", "07"}, {"udp6", "udp", "07"},
	} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f.file))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != f.state {
				continue
			}
			if f.proto == "udp" && !strings.HasSuffix(fields[2], ":0000") {
				continue // a connected socket, e.g. an upstream query
			}
			ap, err := procAddr(fields[1])
			if err != nil {
				return nil, err
			}
			if ap.Addr() == dockerDNS {
				continue // Docker's embedded resolver lives in every user-network namespace
			}
			out = append(out, f.proto+" "+ap.String())
		}
	}
	return out, nil
}

var dockerDNS = netip.MustParseAddr("127.0.0.11")

// procAddr decodes /proc/net's "0100007F:2383": the address as host-order
// 32-bit words in hex, then the port.
func procAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad /proc/net address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad /proc/net address %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // each word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad /proc/net port %q", s)
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

func TestProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:2383":                         "127.0.0.1:9091",
		"02C8D70A:0035":                         "10.215.200.2:53",
		"00000000000000000000000001000000:0035": "[::1]:53",
	} {
		got, err := procAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("procAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}
