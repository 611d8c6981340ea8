package hostaddr

import (
	"net/netip"
	"slices"
	"testing"
)

func TestFilter(t *testing.T) {
	pool := []netip.Prefix{netip.MustParsePrefix("10.213.0.0/16")}
	in := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("::1"),
		netip.MustParseAddr("172.17.0.1"),  // docker0
		netip.MustParseAddr("10.213.0.1"),  // a bottle bridge's gateway
		netip.MustParseAddr("fe80::1"),     // link-local
		netip.MustParseAddr("fd00::2"),     // ULA
		netip.MustParseAddr("203.0.113.5"), // public
		netip.MustParseAddr("::ffff:203.0.113.5"),
		netip.MustParseAddr("2001:db8::5"),
		netip.MustParseAddr("192.0.2.2"),
	}
	want := []netip.Addr{
		netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("203.0.113.5"),
		netip.MustParseAddr("2001:db8::5"),
	}
	if got := Filter(in, pool); !slices.Equal(got, want) {
		t.Errorf("Filter = %v, want %v", got, want)
	}
}

// Unrefused reads the real interfaces: whatever it returns must be refused
// by nothing, and listing it twice gives the same set.
func TestUnrefused(t *testing.T) {
	a, err := Unrefused(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Unrefused(nil)
	if err != nil || !slices.Equal(a, b) {
		t.Fatalf("Unrefused twice: %v then %v, %v", a, b, err)
	}
	for _, ip := range a {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() {
			t.Errorf("Unrefused returned %s, which a refused range covers", ip)
		}
	}
}
