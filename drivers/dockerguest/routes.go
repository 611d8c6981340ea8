package dockerguest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// The guest's own routing table is the third layer, and the one that makes
// a block fast. Docker gives the guest a default route through the bridge
// gateway; on a hostless bridge nobody answers ARP for the gateway, so a
// dial to any address off the bottle subnet hangs for ~3s before it fails.
// Once the container runs, the driver narrows the table (from the host, in
// the guest's network namespace) to a single route: the bundle's /32. Every
// other destination then fails at once with ENETUNREACH, before a packet
// leaves. The guest has no CAP_NET_ADMIN, so it cannot put the routes back;
// a restart of the container (a new network namespace) does, which Observe
// reports as drift and Start and Repair undo.

// route is one IPv4 route of the guest's main table.
type route struct {
	Dev     string
	Dst     netip.Prefix
	Gateway netip.Addr // invalid when on-link
}

func (r route) String() string {
	if r.Gateway.IsValid() {
		return fmt.Sprintf("%s via %s dev %s", r.Dst, r.Gateway, r.Dev)
	}
	return fmt.Sprintf("%s dev %s", r.Dst, r.Dev)
}

// guestNet reads and changes the main IPv4 routing table of a running
// guest, named by the host PID of its init process, and finds that PID
// from the container ID without asking Docker (errPIDUnknown when it
// cannot).
type guestNet interface {
	initPID(id string) (int, error)
	routes(ctx context.Context, pid int) ([]route, error)
	apply(ctx context.Context, pid int, batch []string) error
}

// procNet reads routes from /proc/<pid>/net/route (no command to run) and
// changes them with `nsenter --net=... ip -batch -`.
type procNet struct {
	cgroupPIDs
	run runner
}

func (p procNet) routes(_ context.Context, pid int) ([]route, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/route", pid))
	if err != nil {
		return nil, fmt.Errorf("read guest routes: %w", err)
	}
	defer f.Close()
	rs, err := parseProcRoutes(bufio.NewScanner(f))
	if err != nil {
		return nil, fmt.Errorf("read guest routes of pid %d: %w", pid, err)
	}
	return rs, nil
}

func (p procNet) apply(ctx context.Context, pid int, batch []string) error {
	if len(batch) == 0 {
		return nil
	}
	_, err := p.run.Run(ctx, strings.Join(batch, "\n")+"\n",
		"nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", "ip", "-4", "-batch", "-")
	if err != nil {
		return fmt.Errorf("change guest routes: %w", err)
	}
	return nil
}

// parseProcRoutes reads the format of /proc/net/route: a header line, then
// Iface, Destination, Gateway, Flags, RefCnt, Use, Metric, Mask, ... with
// addresses as little-endian hex.
func parseProcRoutes(sc *bufio.Scanner) ([]route, error) {
	var out []route
	for n := 0; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if n == 0 || len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("line %d: %q: too few fields", n+1, sc.Text())
		}
		dst, err1 := procAddr(f[1])
		gw, err2 := procAddr(f[2])
		mask, err3 := procAddr(f[7])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("line %d: %q: bad address", n+1, sc.Text())
		}
		m := mask.As4()
		bits := 0
		for _, b := range m {
			for ; b&0x80 != 0; b <<= 1 {
				bits++
			}
		}
		r := route{Dev: f[0], Dst: netip.PrefixFrom(dst, bits)}
		if !gw.IsUnspecified() {
			r.Gateway = gw
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func procAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	var a [4]byte
	binary.LittleEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}

// bundleRoute is the one route a guest keeps.
func bundleRoute(rs []route, bundleAddr netip.Addr) (route, error) {
	for _, r := range rs {
		if !r.Gateway.IsValid() && r.Dst.Contains(bundleAddr) {
			return route{Dev: r.Dev, Dst: netip.PrefixFrom(bundleAddr, 32)}, nil
		}
	}
	return route{}, fmt.Errorf("no on-link route to the bundle %s among %v", bundleAddr, rs)
}

// routeDrift says how the guest's routes differ from the bundle's /32
// alone, or "".
func routeDrift(rs []route, bundleAddr netip.Addr) string {
	want := netip.PrefixFrom(bundleAddr, 32)
	var extra []string
	kept := false
	for _, r := range rs {
		if r.Dst == want && !r.Gateway.IsValid() {
			kept = true
			continue
		}
		extra = append(extra, r.String())
	}
	switch {
	case len(extra) > 0:
		return "guest routes beyond its bundle: " + strings.Join(extra, ", ")
	case !kept:
		return "guest has no route to its bundle " + bundleAddr.String()
	}
	return ""
}

// routeBatch returns the `ip -batch` lines that narrow rs to the bundle's
// /32: the /32 goes in first, so the bundle never drops out of reach.
func routeBatch(rs []route, bundleAddr netip.Addr) ([]string, error) {
	if routeDrift(rs, bundleAddr) == "" {
		return nil, nil
	}
	keep, err := bundleRoute(rs, bundleAddr)
	if err != nil {
		return nil, err
	}
	batch := []string{"route replace " + keep.Dst.String() + " dev " + keep.Dev + " scope link"}
	for _, r := range rs {
		if r.Dst == keep.Dst && !r.Gateway.IsValid() {
			continue
		}
		batch = append(batch, "route del "+r.Dst.String()+" dev "+r.Dev)
	}
	return batch, nil
}

// narrow makes the running guest's routing table the bundle's /32 alone,
// and checks that it is.
func (d *Driver) narrow(ctx context.Context, pid int, bundleAddr netip.Addr) error {
	if pid <= 0 {
		return fmt.Errorf("guest is not running (no pid)")
	}
	rs, err := d.net.routes(ctx, pid)
	if err != nil {
		return err
	}
	batch, err := routeBatch(rs, bundleAddr)
	if err != nil || len(batch) == 0 {
		return err
	}
	if err := d.net.apply(ctx, pid, batch); err != nil {
		return err
	}
	rs, err = d.net.routes(ctx, pid)
	if err != nil {
		return err
	}
	if why := routeDrift(rs, bundleAddr); why != "" {
		return fmt.Errorf("guest routes not narrowed: %s", why)
	}
	return nil
}
