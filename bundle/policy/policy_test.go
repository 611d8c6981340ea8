package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, allow []string, refuse ...string) *Policy {
	t.Helper()
	var pfx []netip.Prefix
	for _, s := range refuse {
		pfx = append(pfx, netip.MustParsePrefix(s))
	}
	p, err := New(allow, pfx)
	if err != nil {
		t.Fatalf("New(%q): %v", allow, err)
	}
	return p
}

func TestAllowTarget(t *testing.T) {
	p := mustPolicy(t, []string{
		"allowed.test",
		"*.wild.test",
		"port.test:8443",
		"xn--bcher-kva.test",
		"10.1.2.3",
		"127.0.0.1:9000",
		"[fd00::1]:443",
	})
	tests := []struct {
		target string
		want   bool
	}{
		{"allowed.test:443", true},
		{"allowed.test:80", true},
		{"allowed.test:22", false},
		{"allowed.test:6379", false},
		{"ALLOWED.TEST.:443", true},
		{"Allowed.Test:80", true},
		{"evil-allowed.test:443", false},
		{"evilallowed.test:443", false},
		{"allowed.test.evil.test:443", false},
		{"sub.allowed.test:443", false},
		{"allowed.tes:443", false},

		{"a.wild.test:443", true},
		{"a.b.wild.test:80", true},
		{"A.WILD.TEST.:443", true},
		{"wild.test:443", false},
		{"evilwild.test:443", false},
		{"wild.test.evil.test:443", false},
		{"a.wild.test:8080", false},

		{"port.test:8443", true},
		{"port.test:443", false},
		{"port.test:80", false},

		{"bücher.test:443", true},
		{"BÜCHER.test:443", true},
		{"xn--bcher-kva.test:443", true},
		{"bucher.test:443", false},
		// Cyrillic "а" in place of Latin "a": a different punycode name.
		{"\u0430llowed.test:443", false},
		{"xn--llowed-5nf.test:443", false},

		{"10.1.2.3:443", true},
		{"10.1.2.3:80", true},
		{"10.1.2.3:22", false},
		{"10.1.2.4:443", false},
		{"[::ffff:10.1.2.3]:443", true},
		{"127.0.0.1:9000", true},
		{"127.0.0.1:443", false},
		{"127.0.0.2:9000", false},
		{"[fd00::1]:443", true},
		{"[fd00::2]:443", false},
		// A name never matches an IP rule nor an IP a name rule.
		{"10-1-2-3.test:443", false},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			tg, err := ParseTarget(tt.target, 0)
			if err != nil {
				t.Fatalf("ParseTarget: %v", err)
			}
			rule, got := p.AllowTarget(tg)
			if got != tt.want {
				t.Errorf("AllowTarget(%v) = %v (rule %q), want %v", tg, got, rule, tt.want)
			}
		})
	}
}

func TestAllowName(t *testing.T) {
	p := mustPolicy(t, []string{"allowed.test", "*.wild.test", "port.test:8443", "10.1.2.3"})
	tests := []struct {
		name string
		want bool
	}{
		{"allowed.test", true},
		{"port.test", true}, // ports do not matter to DNS
		{"a.wild.test", true},
		{"x.y.wild.test", true},
		{"wild.test", false},
		{"evil-allowed.test", false},
		{"allowed.test.evil.test", false},
		{"sub.allowed.test", false},
		{"10.1.2.3", false},
		{"other.test", false},
	}
	for _, tt := range tests {
		if got := p.AllowName(tt.name); got != tt.want {
			t.Errorf("AllowName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []string{
		"",
		"allowed.test",  // CONNECT needs a port
		"allowed.test:", // empty port
		"allowed.test:0",
		"allowed.test:65536",
		"allowed.test:+443",
		"allowed.test:http",
		"::1:443", // unbracketed IPv6
		"2130706433:80",
		"0177.0.0.1:80",
		"0x7f.1:80",
		"0x7f000001:80",
		"127.1:80",
		"017700000001:80",
		"[fe80::1%eth0]:443",
		"under_score.test:443",
		"-lead.test:443",
		"a..test:443",
		"*.wild.test:443",
	}
	for _, s := range tests {
		if tg, err := ParseTarget(s, 0); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want error", s, tg)
		}
	}
}

func TestParseTargetDefaults(t *testing.T) {
	tests := []struct {
		in   string
		want Target
	}{
		{"allowed.test", Target{Name: "allowed.test", Port: 80}},
		{"ALLOWED.TEST.:8080", Target{Name: "allowed.test", Port: 8080}},
		{"[::1]", Target{IP: netip.MustParseAddr("::1"), Port: 80}},
		{"[::ffff:127.0.0.1]:443", Target{IP: netip.MustParseAddr("127.0.0.1"), Port: 443}},
		{"1.2.3.4", Target{IP: netip.MustParseAddr("1.2.3.4"), Port: 80}},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in, 80)
		if err != nil || !got.Same(tt.want) {
			t.Errorf("ParseTarget(%q, 80) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestRefused checks every refused range and spelling. A host is refused
// when it does not parse as a target at all (numeric disguises) or when it
// parses to an address in a refused range.
func TestRefused(t *testing.T) {
	extra := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	tests := []struct {
		host    string
		refused bool
		reason  string // substring of the reason, when refused by range
	}{
		{"2130706433", true, ""},
		{"0177.0.0.1", true, ""},
		{"0x7f.1", true, ""},
		{"0x7f000001", true, ""},
		{"127.1", true, ""},
		{"fe80::1%eth0", true, ""},
		{"[::ffff:127.0.0.1]", true, "loopback"},
		{"127.0.0.1", true, "loopback"},
		{"127.255.255.254", true, "loopback"},
		{"0.0.0.0", true, "unspecified"},
		{"0.1.2.3", true, "this host"},
		{"::", true, "unspecified"},
		{"[::1]", true, "loopback"},
		{"::1", true, "loopback"},
		{"10.0.0.1", true, "RFC 1918"},
		{"172.16.0.1", true, "RFC 1918"},
		{"172.31.255.255", true, "RFC 1918"},
		{"192.168.1.1", true, "RFC 1918"},
		{"169.254.169.254", true, "metadata"},
		{"[::ffff:169.254.169.254]", true, "metadata"},
		{"100.64.0.1", true, "CGNAT"},
		{"100.127.255.255", true, "CGNAT"},
		{"192.0.0.170", true, "IETF"},
		{"198.18.0.1", true, "benchmarking"},
		{"224.0.0.1", true, "multicast"},
		{"239.255.255.250", true, "multicast"},
		{"255.255.255.255", true, "broadcast"},
		{"240.0.0.1", true, "reserved"},
		{"fd00::1", true, "ULA"},
		{"fc00::1", true, "ULA"},
		{"fe80::1", true, "link-local"},
		{"febf::1", true, "link-local"},
		{"fec0::1", true, "site-local"},
		{"ff02::1", true, "multicast"},
		{"::127.0.0.1", true, "IPv4-compatible"},
		{"::8.8.8.8", true, "IPv4-compatible"},
		{"::ffff:0:7f00:1", true, "SIIT"},
		{"64:ff9b::7f00:1", true, "NAT64 form of 127.0.0.0/8 reaches the host's loopback"},
		{"64:ff9b::a9fe:a9fe", true, "NAT64 form of 169.254.0.0/16 is link-local"},
		{"64:ff9b::a00:1", true, "NAT64 form of 10.0.0.0/8 is private"},
		{"64:ff9b:1::1", true, "local-use NAT64"},
		{"2002:7f00:1::", true, "6to4 form of 127.0.0.0/8 reaches the host's loopback"},
		{"2002:a9fe:a9fe::1", true, "6to4 form of 169.254.0.0/16 is link-local"},
		{"2002:a00:1::1", true, "6to4 form of 10.0.0.0/8 is private"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true, "Teredo"},
		{"203.0.113.7", true, "203.0.113.0/24"},
		{"[::ffff:203.0.113.7]", true, "203.0.113.0/24"},
		{"64:ff9b::cb00:7107", true, "NAT64 form of refused range"},

		{"93.184.216.34", false, ""},
		{"1.1.1.1", false, ""},
		{"[::ffff:1.1.1.1]", false, ""},
		{"100.63.255.255", false, ""},
		{"100.128.0.1", false, ""},
		{"172.32.0.1", false, ""},
		{"192.169.0.1", false, ""},
		{"169.255.0.1", false, ""},
		{"2606:4700:4700::1111", false, ""},
		{"64:ff9b::808:808", false, ""},
		{"2002:808:808::1", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			host := strings.TrimSuffix(strings.TrimPrefix(tt.host, "["), "]")
			name, ip, err := ParseHost(host)
			if err != nil {
				if !tt.refused {
					t.Fatalf("ParseHost(%q): %v", host, err)
				}
				if tt.reason != "" {
					t.Fatalf("ParseHost(%q) failed (%v), want it to parse and be refused for %q", host, err, tt.reason)
				}
				return
			}
			if name != "" {
				t.Fatalf("ParseHost(%q) = name %q, want an address or an error", host, name)
			}
			reason, refused := Refused(ip, extra)
			if refused != tt.refused {
				t.Fatalf("Refused(%s) = %v (%q), want %v", ip, refused, reason, tt.refused)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("Refused(%s) reason %q, want it to mention %q", ip, reason, tt.reason)
			}
		})
	}
}

func TestCheckDialAndAnswer(t *testing.T) {
	p := mustPolicy(t, []string{"127.0.0.1:9000", "10.9.9.9", "allowed.test"}, "198.51.100.0/24")
	dials := []struct {
		addr string
		port uint16
		ok   bool
	}{
		{"127.0.0.1", 9000, true}, // named literal with its port
		{"::ffff:127.0.0.1", 9000, true},
		{"127.0.0.1", 443, false}, // the literal's rule does not admit 443
		{"127.0.0.2", 9000, false},
		{"10.9.9.9", 443, true},
		{"10.9.9.9", 22, false},
		{"10.0.0.1", 443, false},
		{"198.51.100.1", 443, false},
		{"93.184.216.34", 443, true}, // public: the name rule decided already
	}
	for _, d := range dials {
		err := p.CheckDial(netip.MustParseAddr(d.addr), d.port)
		if (err == nil) != d.ok {
			t.Errorf("CheckDial(%s, %d) = %v, want ok=%v", d.addr, d.port, err, d.ok)
		}
	}
	answers := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1", true}, // named literal, port irrelevant for DNS
		{"10.9.9.9", true},
		{"10.0.0.1", false},
		{"127.0.0.2", false},
		{"169.254.169.254", false},
		{"198.51.100.1", false},
		{"93.184.216.34", true},
	}
	for _, a := range answers {
		err := p.CheckAnswer(netip.MustParseAddr(a.addr))
		if (err == nil) != a.ok {
			t.Errorf("CheckAnswer(%s) = %v, want ok=%v", a.addr, err, a.ok)
		}
	}
}

func TestNewRejectsBadRule(t *testing.T) {
	for _, s := range []string{"http://allowed.test/", "*.test", "2130706433", ""} {
		if _, err := New([]string{s}, nil); err == nil {
			t.Errorf("New(%q) succeeded, want error", s)
		}
	}
}

// WildcardPrefix measures what a wildcard leaves to the guest: nothing for
// a name a rule names exactly, the fewest bytes over every wildcard.
func TestWildcardPrefix(t *testing.T) {
	p := mustPolicy(t, []string{"exact.test", "*.wild.test", "*.deep.wild.test:8443", "named.wild.test", "10.1.2.3"})
	tests := []struct {
		name string
		n    int
		rule string
	}{
		{"exact.test", 0, ""},
		{"other.test", 0, ""},
		{"a.wild.test", 1, "*.wild.test"},
		{"ab.cd.wild.test", 5, "*.wild.test"},
		{"named.wild.test", 0, ""},
		{"x.deep.wild.test", 1, "*.deep.wild.test"},
		{"deep.wild.test", 4, "*.wild.test"},
		{"wild.test", 0, ""},
		{"10.1.2.3", 0, ""},
	}
	for _, tt := range tests {
		if n, rule := p.WildcardPrefix(tt.name); n != tt.n || rule != tt.rule {
			t.Errorf("WildcardPrefix(%q) = %d, %q; want %d, %q", tt.name, n, rule, tt.n, tt.rule)
		}
	}
}
