// Package dockerguest implements the guest driver for spec.guest "docker":
// the bottle's guest as a hardened container on the bottle network, for
// hosts without smolvm.
//
// Two layers keep the guest in. Docker's: the container is attached only to
// the bottle's internal network, with no capabilities, no mount but its
// spec.workspace (a bind, rprivate, read-only when asked) and no published
// ports. The host's: an internal network still reaches the host's own
// addresses (the bridge gateway, docker0, the LAN address, services bound
// to 0.0.0.0), so the driver puts iptables rules in the filter table's
// BOTTLE-GUESTS chain, jumped to first from INPUT and DOCKER-USER, that let
// the guest's address reach only its bundle's proxy and resolver and refuse
// everything else. The rules are installed before the guest first starts
// and checked again before every start, so it never runs without them.
//
// A third layer makes blocks fast: once the container runs, the driver
// narrows the guest's own routing table (from the host, with nsenter and
// ip) to one route, the bundle's /32, so a dial anywhere else fails at once
// with "network unreachable" instead of waiting ~3s for the ARP of a gateway
// that has no host address. Start and Repair narrow it again, and Observe
// reports a running guest with any other route as drift.
//
// There are no ip6tables rules: bottle networks have no IPv6, and the guest
// has IPv6 switched off by sysctl (its /proc/sys is read-only and it has no
// CAP_NET_ADMIN to switch it back on), so it has no IPv6 address to send
// from.
//
// The layer needs br_netfilter (net.bridge.bridge-nf-call-iptables=1, which
// Docker sets up) for traffic between the guest and the bundle on the same
// bridge; traffic to the host and to other networks is routed and is
// filtered either way.
package dockerguest
