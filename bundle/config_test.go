package bundle

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestConfigRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    Config
	}{
		{"full", Config{
			Bottle: "alice", Daemons: []string{"egress", "dns"},
			Allow:    []string{"api.example.com", "*.example.org:8443", "[2001:db8::1]:443"},
			Listen:   netip.MustParseAddr("10.213.0.10"),
			Refuse:   []netip.Prefix{netip.MustParsePrefix("10.213.0.0/16"), netip.MustParsePrefix("fd00::/8")},
			Upstream: "192.0.2.53:53",
		}},
		// No daemons is a choice the spec makes, distinct from the default.
		{"no daemons", Config{Bottle: "b", Daemons: []string{}, Listen: netip.MustParseAddr("10.213.0.18")}},
		{"zero", Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.c.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := DecodeConfig(s)
			if err != nil {
				t.Fatalf("DecodeConfig(%s): %v", s, err)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Errorf("round trip:\n got %#v\nwant %#v\n(%s)", got, tt.c, s)
			}
		})
	}
}

// TestConfigWireNames pins the JSON names: the bundle image may run a
// binary of another build than the reconciler that wrote the config.
func TestConfigWireNames(t *testing.T) {
	s, err := Config{Bottle: "a", Daemons: []string{"dns"}, Allow: []string{"x.example"}, Listen: netip.MustParseAddr("10.0.0.2"),
		Refuse: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Upstream: "1.2.3.4:53"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bottle":"a","daemons":["dns"],"allow":["x.example"],"listen":"10.0.0.2","refuse":["10.0.0.0/8"],"upstream":"1.2.3.4:53"}`
	if s != want {
		t.Errorf("encoded config:\n got %s\nwant %s", s, want)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ConfigEnv + " is not set"},
		{"{", "decode " + ConfigEnv},
		{`{"listen":"not-an-address"}`, "decode " + ConfigEnv},
		{`{"daemons":"egress"}`, "decode " + ConfigEnv},
	} {
		if _, err := DecodeConfig(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeConfig(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}
