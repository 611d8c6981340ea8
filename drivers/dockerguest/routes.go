package dockerguest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/internal/procroute"
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

// guestNet reads and changes the main IPv4 routing table of a running
// guest, named by the host PID of a process in its network namespace, and finds that PID
// from the container ID without asking Docker (errPIDUnknown when it
// cannot).
type guestNet interface {
	netPID(id string) (int, error)
	routes(ctx context.Context, pid int) ([]procroute.Route, error)
	apply(ctx context.Context, pid int, batch []string) error
}

// procNet reads routes from /proc/<pid>/net/route (no command to run) and
// changes them with `nsenter --net=... ip -batch -`.
type procNet struct {
	cgroupPIDs
	run runner
}

func (p procNet) routes(_ context.Context, pid int) ([]procroute.Route, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/route", pid))
	if err != nil {
		return nil, fmt.Errorf("read guest routes: %w", err)
	}
	defer f.Close()
	rs, err := procroute.Parse(f)
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

// bundleRoute is the one route a guest keeps.
func bundleRoute(rs []procroute.Route, bundleAddr netip.Addr) (procroute.Route, error) {
	for _, r := range rs {
		if !r.Gateway.IsValid() && r.Dst.Contains(bundleAddr) {
			return procroute.Route{Dev: r.Dev, Dst: netip.PrefixFrom(bundleAddr, 32)}, nil
		}
	}
	return procroute.Route{}, fmt.Errorf("no on-link route to the bundle %s among %v", bundleAddr, rs)
}

// routeDrift says how the guest's routes differ from the bundle's /32
// alone, or "".
func routeDrift(rs []procroute.Route, bundleAddr netip.Addr) string {
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
func routeBatch(rs []procroute.Route, bundleAddr netip.Addr) ([]string, error) {
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
