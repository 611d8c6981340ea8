package procroute

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	tests := []struct {
		name, table string
		want        []Route
	}{
		{
			// A container Docker put at 10.219.77.3 on a /29 whose gateway is .1.
			"container", header +
				"eth0\t00000000\t014DDB0A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
				"eth0\t004DDB0A\t00000000\t0001\t0\t0\t0\tF8FFFFFF\t0\t0\t0\n",
			[]Route{
				{Dev: "eth0", Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.219.77.1")},
				{Dev: "eth0", Dst: netip.MustParsePrefix("10.219.77.0/29")},
			},
		},
		{
			// An x86-64 host: default via 192.0.2.1, docker0, eth0's LAN.
			"host", header +
				"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
				"docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n" +
				"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
			[]Route{
				{Dev: "eth0", Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("192.0.2.1")},
				{Dev: "docker0", Dst: netip.MustParsePrefix("172.17.0.0/16")},
				{Dev: "eth0", Dst: netip.MustParsePrefix("192.0.2.0/24")},
			},
		},
		{"header only", header, nil},
	}
	for _, tt := range tests {
		got, err := Parse(strings.NewReader(tt.table))
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: Parse = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"h\neth0 00000000\n",                             // too few fields
		"h\neth0 zz 00000000 0 0 0 0 00000000\n",         // not hex
		"h\neth0 000200C0 0 0003 0 0 0 00FFFFFF\n",       // a short word
		"h\neth0 000200C0 00000000 0 0 0 0 00FFFFFFFF\n", // a long one
	} {
		if rs, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", bad, rs)
		}
	}
	want := "0.0.0.0/0 via 10.219.77.1 dev eth0"
	if got := (Route{Dev: "eth0", Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.219.77.1")}).String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
