// Package procroute reads an IPv4 routing table as the kernel prints it in
// /proc/net/route (or /proc/PID/net/route, that process's network
// namespace): no command to run, no netlink.
package procroute

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// Route is one IPv4 route of a main table.
type Route struct {
	Dev     string
	Dst     netip.Prefix
	Gateway netip.Addr // invalid when on-link
}

func (r Route) String() string {
	if r.Gateway.IsValid() {
		return fmt.Sprintf("%s via %s dev %s", r.Dst, r.Gateway, r.Dev)
	}
	return fmt.Sprintf("%s dev %s", r.Dst, r.Dev)
}

// Parse reads the table: a header line, then "Iface Destination Gateway
// Flags RefCnt Use Metric Mask ...". The kernel prints each address with
// %08X of the word as it sits in memory, so writing the number back in
// native order gives the address bytes.
func Parse(r io.Reader) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if n == 1 || len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("route line %d: %q: too few fields", n, sc.Text())
		}
		dst, err1 := addr(f[1])
		gw, err2 := addr(f[2])
		mask, err3 := addr(f[7])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("route line %d: %q: bad address", n, sc.Text())
		}
		ones := bits.OnesCount32(binary.BigEndian.Uint32(mask.AsSlice()))
		rt := Route{Dev: f[0], Dst: netip.PrefixFrom(dst, ones).Masked()}
		if !gw.IsUnspecified() {
			rt.Gateway = gw
		}
		out = append(out, rt)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	return out, nil
}

func addr(s string) (netip.Addr, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], uint32(v))
	return netip.AddrFrom4(a), nil
}
