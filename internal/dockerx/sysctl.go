package dockerx

import "os"

// NoIPv6 is the sysctls that turn IPv6 off in a container's network
// namespace, for a bundle and a docker guest alike: their networks have no
// IPv6, and this drops link-local IPv6 too. Empty where the kernel has no
// IPv6 (writing the sysctls would fail there).
func NoIPv6() map[string]string {
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		return map[string]string{}
	}
	return map[string]string{
		"net.ipv6.conf.all.disable_ipv6":     "1",
		"net.ipv6.conf.default.disable_ipv6": "1",
	}
}
