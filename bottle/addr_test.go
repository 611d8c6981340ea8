package bottle

import (
	"net/netip"
	"testing"
)

// The address layout of a bottle subnet: .1 gateway, .2 bundle, .3 guest.
func TestAddressLayout(t *testing.T) {
	p := netip.MustParsePrefix("10.213.0.8/29")
	for _, tt := range []struct {
		name string
		got  netip.Addr
		want string
	}{
		{"gateway", Gateway(p), "10.213.0.9"},
		{"bundle", BundleAddr(p), "10.213.0.10"},
		{"guest", GuestAddr(p), "10.213.0.11"},
		{"unmasked input", BundleAddr(netip.MustParsePrefix("10.213.0.13/29")), "10.213.0.10"},
	} {
		if tt.got != netip.MustParseAddr(tt.want) {
			t.Errorf("%s = %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}
