package main

import (
	"fmt"
	"net/netip"
	"os"
	"sort"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
)

// Labels on everything the floor, cli and compose contenders make, so the
// cleanup finds it even when a run dies half way.
const (
	labelRun       = "dev.bottle-bench.run"
	labelContender = "dev.bottle-bench.contender"
)

// What every bottle of the benchmark runs: the demo's agent with one env
// value and one allowlisted host, like demo/specs/alice.yaml.
const (
	agentImage   = "bottle-demo-agent:dev"
	allowHost    = "api.anthropic.com"
	guestEnvKey  = "GIT_AUTHOR_NAME"
	guestEnvVal  = "agent"
	guestPids    = 1024 // dockerguest.DefaultPidsLimit
	guestMemory  = 256 << 20
	bundlePids   = 128
	bundleMemory = 128 << 20
)

var (
	// benchPool holds the pinned subnets of floor, cli and compose: each
	// gets its own /18 of it, so a leftover of one never blocks the next.
	benchPool = netip.MustParsePrefix("10.214.0.0/16")
	// reconcilePool is bottle-reconcile's --subnet-pool here: apart from the
	// default 10.213.0.0/16 a demo may be using and from the tests' pools.
	reconcilePool = netip.MustParsePrefix("10.219.0.0/16")
)

// maxBottles is what one /18 of benchPool holds in /29s.
const maxBottles = 2048

// benchBottle is one bottle's names and addresses.
type benchBottle struct {
	Name   string
	Subnet netip.Prefix
}

func (b benchBottle) Network() string            { return "bottle-" + b.Name }
func (b benchBottle) BundleName() string         { return "bottle-" + b.Name + "-bundle" }
func (b benchBottle) GuestName() string          { return "bottle-" + b.Name + "-guest" }
func (b benchBottle) Gateway() netip.Addr        { return bottle.Gateway(b.Subnet) }
func (b benchBottle) BundleAddr() netip.Addr     { return bottle.BundleAddr(b.Subnet) }
func (b benchBottle) GuestAddr() netip.Addr      { return bottle.GuestAddr(b.Subnet) }
func (b benchBottle) Service(role string) string { return b.Name + "-" + role }

// layout is the bottles one contender brings up: names prefix-NN and, for
// the pinned contenders, /29s from slot's /18 of benchPool.
func layout(prefix string, slot, n int) []benchBottle {
	width := len(fmt.Sprint(n - 1))
	base := benchPool.Addr().As4()
	out := make([]benchBottle, n)
	for i := range out {
		off := slot<<14 + i*8
		a := base
		a[2] += byte(off >> 8)
		a[3] = byte(off)
		out[i] = benchBottle{
			Name:   fmt.Sprintf("%s-%0*d", prefix, width, i),
			Subnet: netip.PrefixFrom(netip.AddrFrom4(a), 29),
		}
	}
	return out
}

// bundleConfig is the bundle's BOTTLE_BUNDLE_CONFIG, as the bundle driver
// writes it for a spec allowing allowHost with the default daemons.
func bundleConfig(b benchBottle, refuse netip.Prefix) (string, error) {
	s, err := bundle.Config{
		Bottle:  b.Name,
		Daemons: []string{bundle.DaemonEgress, bundle.DaemonDNS},
		Allow:   []string{allowHost},
		Listen:  b.BundleAddr(),
		Refuse:  []netip.Prefix{refuse},
	}.Encode()
	if err != nil {
		return "", fmt.Errorf("bundle config of %s: %w", b.Name, err)
	}
	return s, nil
}

// guestEnv is the guest's environment, sorted, as the docker guest driver
// builds it: the spec's env plus the bundle's proxy settings.
func guestEnv(b benchBottle) []string {
	env := bundle.GuestEnv([]string{bundle.DaemonEgress, bundle.DaemonDNS}, b.BundleAddr())
	env[guestEnvKey] = guestEnvVal
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// bundleSysctls are the bundle's: port 53 for nobody, and no IPv6 where the
// kernel has it (writing the sysctl fails otherwise).
func bundleSysctls() map[string]string {
	s := map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
	if hasIPv6() {
		s["net.ipv6.conf.all.disable_ipv6"] = "1"
	}
	return s
}

// guestSysctls are the docker guest's: no IPv6, where the kernel has it.
func guestSysctls() map[string]string {
	if !hasIPv6() {
		return nil
	}
	return map[string]string{
		"net.ipv6.conf.all.disable_ipv6":     "1",
		"net.ipv6.conf.default.disable_ipv6": "1",
	}
}

func hasIPv6() bool {
	_, err := os.Stat("/proc/sys/net/ipv6")
	return err == nil
}
