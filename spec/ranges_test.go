package spec

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// What a spec may still open on purpose: its own private networks, a
// CGNAT address that is not smolvm's loopback mapping, public ranges.
func TestAllowCIDRsAccepted(t *testing.T) {
	for _, c := range []string{"10.99.1.0/24", "172.20.0.0/16", "192.168.4.0/24", "100.101.2.3/32", "198.51.100.0/24", "2001:db8::/32", "2606:4700::/32", "::ffff:198.51.100.7/128"} {
		if why := refusedCIDR(netip.MustParsePrefix(c), DefaultPool); why != "" {
			t.Errorf("%s refused: %s", c, why)
		}
	}
}

// The gate and the validator read one table: every range the validator
// refuses outright, the gate refuses for a resolved name too; and the
// embedded IPv4 of a translator decides at the gate.
func TestOneTable(t *testing.T) {
	for _, r := range RefusedRanges {
		if r.Translator {
			continue
		}
		if _, refused := RefusedAddr(r.Prefix.Addr(), nil); !refused {
			t.Errorf("the gate lets %s through, which the table refuses", r.Prefix.Addr())
		}
	}
	for _, tt := range []struct {
		addr    string
		refused bool
	}{
		{"64:ff9b::7f00:1", true},     // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true},  // NAT64 of 169.254.169.254
		{"2002:7f00:1::1", true},      // 6to4 of 127.0.0.1
		{"64:ff9b::c633:6407", false}, // NAT64 of 198.51.100.7: public
		{"::ffff:10.0.0.1", true},
		{"fd00:ec2::254", true},
		{"100.96.0.1", true},
		{"198.51.100.7", false},
	} {
		if _, got := RefusedAddr(netip.MustParseAddr(tt.addr), nil); got != tt.refused {
			t.Errorf("gate on %s: refused %v, want %v", tt.addr, got, tt.refused)
		}
	}
}

// allowCIDRs may not reach into the subnet another bottle pins: the
// offending bottle is invalid (and held), the pinning one stays valid.
func TestAllowCIDRsIntoAnotherBottlesSubnet(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", withSpec("network: {subnet: 10.99.0.0/29}")) // bottle alice
	write(t, dir, "b.yaml", named("bob")+"  allowCIDRs: [198.51.100.0/24, 10.99.0.0/24]\n")
	write(t, dir, "c.yaml", named("carol")+"  allowCIDRs: [\"::ffff:10.99.0.3\"]\n")
	write(t, dir, "d.yaml", named("dave")+"  allowCIDRs: [10.99.1.0/24]\n  egress: {allow: [\"10.99.1.2:443\"]}\n")
	write(t, dir, "e.yaml", named("erin")+"  egress: {allow: [x.com, \"10.99.0.2:3128\"]}\n")
	r, err := LoadDir(dir, Options{AllowSubnetOutsidePool: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range r.Bottles {
		names = append(names, b.Metadata.Name)
	}
	if strings.Join(names, ",") != "alice,dave" {
		t.Errorf("valid bottles %v, want alice and dave", names)
	}
	if len(r.Problems) != 3 || r.Held["bob"] == "" || r.Held["carol"] == "" || r.Held["erin"] == "" {
		t.Fatalf("problems %v, held %v", r.Problems, r.Held)
	}
	if p := r.Problems[2]; filepath.Base(p.File) != "e.yaml" || p.Field != "spec.egress.allow[1]" || p.Line != 7 || p.Column != 27 ||
		!strings.Contains(p.Message, `10.99.0.2:3128 is in 10.99.0.0/29, the subnet bottle "alice" pins`) {
		t.Errorf("problem %+v", p)
	}
	p := r.Problems[0]
	if filepath.Base(p.File) != "b.yaml" || p.Field != "spec.allowCIDRs[1]" || p.Line != 7 ||
		!strings.Contains(p.Message, `10.99.0.0/24 overlaps 10.99.0.0/29, the subnet bottle "alice" pins`) {
		t.Errorf("problem %+v", p)
	}
}
