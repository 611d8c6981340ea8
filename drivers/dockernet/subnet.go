package dockernet

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/docker/docker/api/types/network"

	"github.com/bottle-reconcile/bottle-reconcile/internal/procroute"
)

// ChooseSubnet returns the first /size subnet of pool that overlaps none of
// taken. It is pure, so the allocation rule is testable without a daemon;
// first-fit keeps the choice deterministic and reuses freed subnets.
func ChooseSubnet(pool netip.Prefix, size int, taken []netip.Prefix) (netip.Prefix, error) {
	if !pool.IsValid() || !pool.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("pool %s is not an IPv4 prefix", pool)
	}
	if size < pool.Bits() || size > 32 {
		return netip.Prefix{}, fmt.Errorf("cannot carve /%d subnets from pool %s", size, pool)
	}
	pool = pool.Masked()
	// Only the taken prefixes that touch the pool matter.
	var near []netip.Prefix
	for _, t := range taken {
		if t.IsValid() && t.Addr().Is4() && t.Overlaps(pool) {
			near = append(near, t.Masked())
		}
	}
	start := binary.BigEndian.Uint32(pool.Addr().AsSlice())
	step := uint64(1) << (32 - size)
	count := uint64(1) << (size - pool.Bits())
next:
	for i := range count {
		a := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, start+uint32(i*step))))
		cand := netip.PrefixFrom(a, size)
		for _, t := range near {
			if t.Overlaps(cand) {
				continue next
			}
		}
		return cand, nil
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d left in pool %s (%d ranges in use overlap it); use a larger pool", size, pool, len(near))
}

// dockerSubnets returns the IPv4 subnets of every Docker network, whoever
// made it.
func dockerSubnets(nets []network.Summary) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// hostPrefixes returns the IPv4 ranges the host already routes or has
// addresses in, so a bottle subnet never shadows a LAN or VPN route. The
// default route is left out: it overlaps everything.
func hostPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, fmt.Errorf("read host routes: %w", err)
	}
	defer f.Close()
	routes, err := procroute.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("read host routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst.Bits() > 0 { // the default route overlaps everything
			out = append(out, r.Dst)
		}
	}
	// One netlink dump for every interface's addresses: asking interface
	// by interface costs a dump each, and a host with hundreds of bottles
	// has hundreds of bridges and veths.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		ones, _ := ipn.Mask.Size()
		if !ok || !ip.Unmap().Is4() {
			continue
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones-(len(ipn.Mask)*8-32)).Masked())
	}
	return out, nil
}
