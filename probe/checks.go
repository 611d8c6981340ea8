package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Default per-attempt timeouts. A block should be a refusal, which comes
// back in milliseconds; the timeout only bounds a path that drops.
const (
	defaultTimeout = 2 * time.Second
	scanTimeout    = 500 * time.Millisecond
	scanWorkers    = 512
	maxRead        = 64 << 10
)

// checkFunc carries out one check and says what it saw.
type checkFunc func(ctx context.Context, c Check) Observation

var kinds = map[string]checkFunc{
	KindHTTP:   checkHTTP,
	KindTCP:    checkTCP,
	KindProxy:  checkProxy,
	KindScan:   checkScan,
	KindDNS:    checkDNS,
	KindUDP:    checkUDP,
	KindICMP:   checkICMP,
	KindRoute:  checkRoute,
	KindIPv6:   checkIPv6,
	KindFiles:  checkFiles,
	KindMounts: checkMounts,

	KindWorkspace: checkWorkspace,
}

// Execute carries out every check of p, several at a time, and returns the
// observations in plan order.
func Execute(ctx context.Context, p Plan) []Observation {
	out := make([]Observation, len(p.Checks))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, c := range p.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f, ok := kinds[c.Kind]
			start := time.Now()
			var o Observation
			if !ok {
				o = Observation{Observed: "unknown check kind", Detail: c.Kind}
			} else {
				o = f(ctx, c)
			}
			o.ID = c.ID
			o.Millis = time.Since(start).Milliseconds()
			out[i] = o
		}()
	}
	wg.Wait()
	return out
}

func timeout(c Check, def time.Duration) time.Duration {
	if c.TimeoutMillis > 0 {
		return time.Duration(c.TimeoutMillis) * time.Millisecond
	}
	return def
}

// describe names a network error the way a person would: how the path was
// closed.
func describe(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ENETUNREACH):
		return "no route"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "denied by the kernel"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no address family"
	case errors.Is(err, io.EOF):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error"
}

func dial(ctx context.Context, network, addr string, d time.Duration) (net.Conn, error) {
	dl := net.Dialer{Timeout: d}
	return dl.DialContext(ctx, network, addr)
}

// readAll reads what comes back until EOF, the limit or the deadline.
func readAll(c net.Conn, d time.Duration) []byte {
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, _ := io.ReadAll(io.LimitReader(c, maxRead))
	return b
}

func checkHTTP(ctx context.Context, c Check) Observation {
	d := timeout(c, defaultTimeout)
	conn, err := dial(ctx, "tcp", c.Addr, d)
	if err != nil {
		return Observation{Observed: describe(err), Detail: err.Error()}
	}
	defer conn.Close()
	host := c.Host
	if host == "" {
		host = c.Addr
	}
	_ = conn.SetWriteDeadline(time.Now().Add(d))
	_, _ = io.WriteString(conn, "GET /"+c.Mark+" HTTP/1.0\r\nHost: "+host+"\r\n\r\n")
	return judgeData(readAll(conn, d), c.Token, "connected")
}

// judgeData says whether the canary answered: the token, or without one any
// byte at all.
func judgeData(b []byte, token, prefix string) Observation {
	switch {
	case token != "" && bytes.Contains(b, []byte(token)):
		return Observation{Reached: true, Observed: "TOKEN RETURNED", Detail: snippet(b)}
	case len(b) == 0:
		return Observation{Observed: prefix + ", no data"}
	case token == "":
		return Observation{Reached: true, Observed: "DATA RETURNED", Detail: snippet(b)}
	}
	return Observation{Observed: prefix + ", data without the token", Detail: snippet(b)}
}

func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func checkTCP(ctx context.Context, c Check) Observation {
	conn, err := dial(ctx, "tcp", c.Addr, timeout(c, defaultTimeout))
	if err != nil {
		return Observation{Observed: describe(err), Detail: err.Error()}
	}
	conn.Close()
	return Observation{Reached: true, Observed: "CONNECTED"}
}

// checkProxy asks the proxy for Target. Reached means the proxy let the
// request through: a tunnel opened, a 2xx came back, the token came back, or
// the proxy answered something other than the Status a block must get.
func checkProxy(ctx context.Context, c Check) Observation {
	d := timeout(c, 5*time.Second)
	conn, err := dial(ctx, "tcp", c.Addr, d)
	if err != nil {
		return Observation{Observed: "proxy " + describe(err), Detail: err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(d))
	var req string
	if c.Method == http.MethodConnect {
		host := c.Host
		if host == "" {
			host = c.Target
		}
		req = "CONNECT " + c.Target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	} else {
		host := c.Host
		if host == "" {
			if i := strings.Index(c.Target, "://"); i >= 0 {
				host, _, _ = strings.Cut(c.Target[i+3:], "/")
			}
		}
		req = "GET " + c.Target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return Observation{Observed: "proxy " + describe(err), Detail: err.Error()}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return Observation{Observed: "no HTTP answer: " + describe(err), Detail: err.Error()}
	}
	defer resp.Body.Close()
	status := resp.Status
	if c.Method == http.MethodConnect && resp.StatusCode/100 == 2 {
		// A tunnel: ask the far end for the token through it.
		_, _ = io.WriteString(conn, "GET /"+c.Mark+" HTTP/1.0\r\nHost: "+c.Target+"\r\n\r\n")
		b, _ := io.ReadAll(io.LimitReader(br, maxRead))
		o := judgeData(b, c.Token, "tunnel")
		o.Reached = true
		o.Observed = "TUNNEL OPENED (" + status + "): " + o.Observed
		return o
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRead))
	o := Observation{Observed: status, Detail: snippet(body)}
	switch {
	case c.Token != "" && bytes.Contains(body, []byte(c.Token)):
		o.Reached, o.Observed = true, status+", TOKEN RETURNED"
	case resp.StatusCode/100 == 2:
		o.Reached = true
	case c.Status != 0 && resp.StatusCode != c.Status:
		o.Reached = true
		o.Observed = fmt.Sprintf("%s (want %d)", status, c.Status)
	}
	return o
}

// checkScan connects to every port of Addr (a host), or those from ScanFrom
// to ScanTo, and lists the open ones.
func checkScan(ctx context.Context, c Check) Observation {
	d := timeout(c, scanTimeout)
	ports := make(chan int)
	var mu sync.Mutex
	var open []int
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range scanWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range ports {
				conn, err := dial(ctx, "tcp", net.JoinHostPort(c.Addr, strconv.Itoa(p)), d)
				mu.Lock()
				if err == nil {
					open = append(open, p)
					conn.Close()
				} else {
					counts[describe(err)]++
				}
				mu.Unlock()
			}
		}()
	}
	from, to := 1, 65535
	if c.ScanFrom > 0 {
		from = c.ScanFrom
	}
	if c.ScanTo > 0 {
		to = min(c.ScanTo, 65535)
	}
	for p := from; p <= to && ctx.Err() == nil; p++ {
		ports <- p
	}
	close(ports)
	wg.Wait()
	sort.Ints(open)
	var extra []int
	for _, p := range open {
		if !slices.Contains(c.Ports, p) {
			extra = append(extra, p)
		}
	}
	var closed []string
	for k, n := range counts {
		closed = append(closed, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(closed)
	o := Observation{Observed: "open: " + ints(open), Detail: "closed: " + strings.Join(closed, ", ")}
	if len(extra) > 0 {
		o.Reached = true
		o.Observed = "UNEXPECTED OPEN: " + ints(extra)
	}
	return o
}

func ints(xs []int) string {
	if len(xs) == 0 {
		return "none"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func checkDNS(ctx context.Context, c Check) Observation {
	server := c.Addr
	if server == DefaultResolver {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return Observation{Observed: "no default resolver", Detail: fmt.Sprint(err)}
		}
		server = net.JoinHostPort(cc.Servers[0], cc.Port)
	}
	network := c.Net
	if network == "" {
		network = "udp"
	}
	cl := &dns.Client{Net: network, Timeout: timeout(c, 1500*time.Millisecond)}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(c.Query), dns.TypeA)
	resp, _, err := cl.ExchangeContext(ctx, m, server)
	if err != nil {
		return Observation{Observed: describe(err) + " (" + server + "/" + network + ")", Detail: err.Error()}
	}
	rcode := dns.RcodeToString[resp.Rcode]
	var ips []string
	for _, rr := range resp.Answer {
		switch a := rr.(type) {
		case *dns.A:
			ips = append(ips, a.A.String())
		case *dns.AAAA:
			ips = append(ips, a.AAAA.String())
		}
	}
	o := Observation{Observed: fmt.Sprintf("%s, %d answer(s) (%s/%s)", rcode, len(resp.Answer), server, network), Detail: strings.Join(ips, " ")}
	switch {
	case c.DNSWant == DNSReply:
		o.Reached = true
	case len(c.BadIPs) > 0:
		for _, ip := range ips {
			if slices.Contains(c.BadIPs, ip) {
				o.Reached = true
				o.Observed = "REBOUND TO " + ip
			}
		}
	case len(resp.Answer) > 0:
		o.Reached = true
		o.Observed = "ANSWERED " + rcode + " " + strings.Join(ips, " ")
	}
	return o
}

func checkUDP(ctx context.Context, c Check) Observation {
	d := timeout(c, defaultTimeout)
	conn, err := dial(ctx, "udp", c.Addr, d)
	if err != nil {
		return Observation{Observed: describe(err), Detail: err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(d))
	if _, err := conn.Write([]byte("probe " + c.Mark)); err != nil {
		return Observation{Observed: "send: " + describe(err), Detail: err.Error()}
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		// A refusal comes back as ECONNREFUSED on the connected socket.
		return Observation{Observed: describe(err), Detail: err.Error()}
	}
	return judgeData(buf[:n], c.Token, "reply")
}

// checkICMP sends one echo request, over a raw socket if the guest may open
// one, else an unprivileged ping socket. Without either the guest has no
// capability to send ICMP at all, which passes.
func checkICMP(ctx context.Context, c Check) Observation {
	ip, err := netip.ParseAddr(c.Addr)
	if err != nil || !ip.Is4() {
		return Observation{Observed: "bad address", Detail: c.Addr}
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	how := "raw socket"
	if err != nil {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_ICMP)
		how = "ping socket"
	}
	if err != nil {
		return Observation{Observed: "no capability", Detail: "raw and ping sockets refused: " + err.Error()}
	}
	defer syscall.Close(fd)
	d := timeout(c, 1500*time.Millisecond)
	tv := syscall.NsecToTimeval(int64(d))
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	msg := []byte{8, 0, 0, 0, 0x42, 0x42, 0, 1, 'b', 'o', 't', 't', 'l', 'e'}
	binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
	to := &syscall.SockaddrInet4{Addr: ip.As4()}
	if err := syscall.Sendto(fd, msg, 0, to); err != nil {
		return Observation{Observed: how + ": send " + describe(err), Detail: err.Error()}
	}
	deadline := time.Now().Add(d)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
				return Observation{Observed: how + ": no reply"}
			}
			return Observation{Observed: how + ": " + describe(err), Detail: err.Error()}
		}
		f, ok := from.(*syscall.SockaddrInet4)
		if !ok || netip.AddrFrom4(f.Addr) != ip {
			continue
		}
		b := buf[:n]
		if how == "raw socket" && len(b) > 20 { // raw sockets see the IP header
			b = b[int(b[0]&0x0f)*4:]
		}
		if len(b) > 0 && b[0] == 0 { // echo reply
			return Observation{Reached: true, Observed: how + ": ECHO REPLY"}
		}
		if len(b) > 0 && b[0] == 3 {
			return Observation{Observed: fmt.Sprintf("%s: unreachable (code %d)", how, b[1])}
		}
	}
	return Observation{Observed: how + ": no reply"}
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// checkRoute asks the kernel for a route without sending a packet: a UDP
// connect() only looks the destination up.
func checkRoute(ctx context.Context, c Check) Observation {
	conn, err := dial(ctx, "udp", c.Addr, time.Second)
	if err != nil {
		return Observation{Observed: describe(err), Detail: err.Error()}
	}
	defer conn.Close()
	return Observation{Reached: true, Observed: "ROUTE EXISTS", Detail: "from " + conn.LocalAddr().String()}
}

// checkIPv6 lists the guest's IPv6 addresses that are neither loopback nor
// link-local.
func checkIPv6(ctx context.Context, c Check) Observation {
	b, err := os.ReadFile("/proc/net/if_inet6")
	if errors.Is(err, os.ErrNotExist) {
		return Observation{Observed: "no IPv6 in the kernel"}
	}
	if err != nil {
		return Observation{Observed: "unreadable", Detail: err.Error()}
	}
	var bad, all []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || len(f[0]) != 32 {
			continue
		}
		var a [16]byte
		for i := range a {
			x, _ := strconv.ParseUint(f[0][2*i:2*i+2], 16, 8)
			a[i] = byte(x)
		}
		ip := netip.AddrFrom16(a)
		all = append(all, ip.String()+"%"+f[5])
		if !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			bad = append(bad, ip.String()+"%"+f[5])
		}
	}
	if len(bad) > 0 {
		return Observation{Reached: true, Observed: "GLOBAL/ULA ADDRESS " + strings.Join(bad, " ")}
	}
	if len(all) == 0 {
		return Observation{Observed: "no IPv6 address"}
	}
	return Observation{Observed: "link-local/loopback only", Detail: strings.Join(all, " ")}
}

func checkFiles(ctx context.Context, c Check) Observation {
	var found []string
	for _, p := range c.Paths {
		if _, err := os.Lstat(p); err == nil {
			found = append(found, p)
		}
	}
	if len(found) > 0 {
		return Observation{Reached: true, Observed: "PRESENT " + strings.Join(found, " ")}
	}
	return Observation{Observed: "absent", Detail: strings.Join(c.Paths, " ")}
}

// hostFS are filesystem types that, mounted in a guest, are a piece of some
// host's disk or a share of its files.
var hostFS = []string{"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "vfat", "exfat", "ntfs", "ntfs3",
	"9p", "virtiofs", "nfs", "nfs4", "cifs", "smb3", "fuse", "fuseblk", "fuse.sshfs"}

// ownFiles are the files Docker bind-mounts into every container from its
// own directory; they belong to the container.
var ownFiles = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}

// mountLine is one line of /proc/self/mountinfo: where, what type, and
// its per-mount options (ro or rw first).
type mountLine struct{ point, fstype, opts string }

// parseMountinfo reads the mount point (field 5), the per-mount options
// (field 6) and the filesystem type (the first field after " - ").
func parseMountinfo(text string) []mountLine {
	var out []mountLine
	for _, line := range strings.Split(text, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 1 {
			continue
		}
		out = append(out, mountLine{point: f[4], fstype: g[0], opts: f[5]})
	}
	return out
}

func readMountinfo() ([]mountLine, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountinfo(string(b)), nil
}

// checkMounts reads /proc/self/mountinfo and reports host filesystems
// mounted anywhere but the guest's own root, Docker's per-container files
// and the workspace (c.Paths).
func checkMounts(ctx context.Context, c Check) Observation {
	ms, err := readMountinfo()
	if err != nil {
		return Observation{Observed: "unreadable", Detail: err.Error()}
	}
	return judgeMounts(ms, c.Paths)
}

func judgeMounts(ms []mountLine, allowed []string) Observation {
	var bad []string
	for _, m := range ms {
		if m.point == "/" || slices.Contains(ownFiles, m.point) || slices.Contains(allowed, m.point) ||
			!slices.Contains(hostFS, m.fstype) && !strings.HasPrefix(m.fstype, "fuse.") {
			continue
		}
		bad = append(bad, m.point+" ("+m.fstype+" "+m.opts+")")
	}
	if len(bad) > 0 {
		return Observation{Reached: true, Observed: "HOST MOUNTS " + strings.Join(bad, " ")}
	}
	return Observation{Observed: fmt.Sprintf("none of %d mounts is a host filesystem", len(ms))}
}

// checkWorkspace reports whether the workspace c.Paths[0] is mounted, and
// read-only exactly when c.ReadOnly asks.
func checkWorkspace(ctx context.Context, c Check) Observation {
	ms, err := readMountinfo()
	if err != nil {
		return Observation{Observed: "unreadable", Detail: err.Error()}
	}
	return judgeWorkspace(ms, c)
}

func judgeWorkspace(ms []mountLine, c Check) Observation {
	if len(c.Paths) != 1 {
		return Observation{Observed: "no workspace path"}
	}
	var found *mountLine
	for i := range ms {
		if ms[i].point == c.Paths[0] {
			found = &ms[i] // the last one is the one on top
		}
	}
	if found == nil {
		return Observation{Observed: "NOT MOUNTED", Detail: c.Paths[0]}
	}
	ro := slices.Contains(strings.Split(found.opts, ","), "ro")
	detail := found.fstype + " " + found.opts
	switch {
	case ro && c.ReadOnly:
		return Observation{Reached: true, Observed: "mounted read-only", Detail: detail}
	case !ro && !c.ReadOnly:
		return Observation{Reached: true, Observed: "mounted read-write", Detail: detail}
	case c.ReadOnly:
		return Observation{Observed: "WRITABLE", Detail: detail}
	}
	return Observation{Observed: "READ-ONLY", Detail: detail}
}
