package bundle

import "net/netip"

// GuestEnv returns the environment a guest needs to use its bundle: the proxy
// variables, in both cases since tools disagree on which they read, when the
// egress daemon runs. spec.ReservedEnv lists these names, so validation refuses them in spec.env, so
// nothing a spec says can point the guest elsewhere.
func GuestEnv(daemons []string, bundleAddr netip.Addr) map[string]string {
	env := map[string]string{}
	for _, d := range daemons {
		if d != DaemonEgress {
			continue
		}
		proxy := "http://" + netip.AddrPortFrom(bundleAddr, ProxyPort).String()
		noProxy := "localhost,127.0.0.1,::1"
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			env[k] = proxy
		}
		env["NO_PROXY"] = noProxy
		env["no_proxy"] = noProxy
	}
	return env
}
