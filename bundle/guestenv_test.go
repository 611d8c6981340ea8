package bundle

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func TestGuestEnv(t *testing.T) {
	addr := netip.MustParseAddr("10.213.4.2")
	proxy := "http://10.213.4.2:3128"
	noProxy := "localhost,127.0.0.1,::1"
	withEgress := map[string]string{
		"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
		"NO_PROXY": noProxy, "no_proxy": noProxy,
	}
	tests := []struct {
		daemons []string
		want    map[string]string
	}{
		{[]string{DaemonEgress, DaemonDNS}, withEgress},
		{[]string{DaemonEgress}, withEgress},
		{[]string{DaemonDNS}, map[string]string{}},
		{[]string{}, map[string]string{}},
	}
	for _, tt := range tests {
		got := GuestEnv(tt.daemons, addr)
		if !maps.Equal(got, tt.want) {
			t.Errorf("GuestEnv(%v) = %v, want %v", tt.daemons, got, tt.want)
		}
		// Whatever GuestEnv sets, a spec may not set: validation refuses it.
		for k := range got {
			if !spec.IsReservedEnv(k) {
				t.Errorf("GuestEnv sets %s, which spec.ReservedEnv does not reserve", k)
			}
		}
	}
	v6 := GuestEnv([]string{DaemonEgress}, netip.MustParseAddr("fd00::2"))
	if v6["HTTP_PROXY"] != "http://[fd00::2]:3128" {
		t.Errorf("IPv6 bundle proxy = %q", v6["HTTP_PROXY"])
	}
}
