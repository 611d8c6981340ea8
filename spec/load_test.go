package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const valid = `apiVersion: bottle-reconcile/v1alpha1
kind: Bottle
metadata:
  name: alice
spec:
  image: ghcr.io/acme/agent:1.4
`

// withSpec appends lines under spec: to the valid document.
func withSpec(lines ...string) string {
	return valid + "  " + strings.Join(lines, "\n  ") + "\n"
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // substring of the rendered problem, file:line:col included
	}{
		{"yaml syntax", "apiVersion: [\n", "f.yaml:1: YAML syntax error"},
		{"yaml syntax later line", valid + "  env: {a: b\n  x: [\n", "f.yaml:7: YAML syntax error"},
		{"yaml tab", valid + "\tx: 1\n", "f.yaml:7: YAML syntax error"},
		{"empty file", "", "f.yaml:1:1: file is empty"},
		{"two documents", valid + "---\n" + valid, "a second YAML document"},
		{"not a mapping", "- a\n- b\n", "must be a YAML mapping"},
		{"duplicate key", valid + "  image: other\n", "f.yaml:7:3: spec.image: key appears twice"},
		{"wrong apiVersion", strings.Replace(valid, "v1alpha1", "v1", 1), "f.yaml:1:13: apiVersion: must be bottle-reconcile/v1alpha1"},
		{"wrong kind", strings.Replace(valid, "kind: Bottle", "kind: Pod", 1), "f.yaml:2:7: kind: must be Bottle"},
		{"missing spec", "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata: {name: a}\n", `missing required field "spec"`},
		{"missing image", strings.Replace(valid, "  image: ghcr.io/acme/agent:1.4\n", "  guest: smolvm\n", 1), `f.yaml:6:3: spec: missing required field "image"`},
		{"unknown field with suggestion", withSpec("alowCIDRs: [198.51.100.0/24]"), "f.yaml:7:3: spec.alowCIDRs: unknown field; did you mean allowCIDRs?"},
		{"unknown field case", withSpec("allowCidrs: [198.51.100.0/24]"), "did you mean allowCIDRs?"},
		{"unknown field no suggestion", withSpec("zzzzzz: 1"), "spec.zzzzzz: unknown field; allowed fields are allowCIDRs, daemons"},
		{"unknown top-level", valid + "status: {}\n", "f.yaml:7:1: status: unknown field"},
		{"unknown top-level suggestion", strings.Replace(valid, "apiVersion:", "apiVerison:", 1), "f.yaml:1:1: apiVerison: unknown field; did you mean apiVersion?"},
		{"unknown metadata field", strings.Replace(valid, "  name: alice", "  name: alice\n  nmae: bob", 1), "f.yaml:5:3: metadata.nmae: unknown field; did you mean name?"},
		{"unknown egress field", withSpec("egress: {alow: [x.com]}"), "f.yaml:7:12: spec.egress.alow: unknown field; did you mean allow?"},
		{"unknown resources field", withSpec("resources: {cpu: 2}"), "f.yaml:7:15: spec.resources.cpu: unknown field; did you mean cpus?"},
		{"unknown network field", withSpec("network: {subent: 10.213.4.0/29}"), "f.yaml:7:13: spec.network.subent: unknown field; did you mean subnet?"},
		{"unknown field case at depth", withSpec("resources: {memorymib: 128}"), "spec.resources.memorymib: unknown field; did you mean memoryMiB?"},
		{"duplicate key nested", withSpec("resources: {cpus: 1, cpus: 2}"), "f.yaml:7:24: spec.resources.cpus: key appears twice"},
		{"name uppercase", strings.Replace(valid, "name: alice", "name: Alice", 1), "f.yaml:4:9: metadata.name: must be a lowercase DNS label"},
		{"name double dash", strings.Replace(valid, "name: alice", "name: a--b", 1), `metadata.name: must not contain "--"`},
		{"name too long", strings.Replace(valid, "name: alice", "name: "+strings.Repeat("a", 41), 1), "metadata.name: is longer than 40 characters"},
		{"guest", withSpec("guest: qemu"), "f.yaml:7:10: spec.guest: must be smolvm or docker"},
		{"pullPolicy", withSpec("pullPolicy: IfNotPresent"), "f.yaml:7:15: spec.pullPolicy: must be missing, always or never"},
		{"pullPolicy case", withSpec("pullPolicy: Always"), "spec.pullPolicy: must be missing, always or never"},
		{"pullPolicy misspelt", withSpec("pullpolicy: always"), "f.yaml:7:3: spec.pullpolicy: unknown field; did you mean pullPolicy?"},
		{"daemon", withSpec("daemons: [egress, ssh]"), "spec.daemons[1]: must be egress or dns"},
		{"daemon twice", withSpec("daemons: [dns, dns]"), "spec.daemons: lists the same value twice"},
		{"image whitespace", strings.Replace(valid, "agent:1.4", "agent 1.4", 1), "spec.image: must not contain whitespace"},
		{"image reference", strings.Replace(valid, "ghcr.io/acme/agent:1.4", "ghcr.io/Acme/agent:1.4", 1), "is not a valid image reference"},
		{"cpus zero", withSpec("resources: {cpus: 0}"), "spec.resources.cpus: must be >= 1"},
		{"memory small", withSpec("resources: {memoryMiB: 16}"), "spec.resources.memoryMiB: must be >= 64"},
		{"env bad key", withSpec(`env: {"1X": a}`), "spec.env.1X: is not a valid environment variable name"},
		{"env boolean value", withSpec("env: {DEBUG: yes}"), "spec.env.DEBUG: expected string, but got boolean; YAML reads yes/no"},
		{"env number value", withSpec("env: {PORT: 8080}"), "spec.env.PORT: expected string, but got number; quote the value"},
		{"env reserved", withSpec("env: {HTTPS_PROXY: http://x}"), "f.yaml:7:9: spec.env.HTTPS_PROXY: is set by bottle-reconcile itself"},
		{"env reserved mixed case", withSpec("env: {Http_Proxy: http://x}"), "spec.env.Http_Proxy: is set by bottle-reconcile itself"},
		{"env reserved all_proxy", withSpec("env: {ALL_PROXY: socks5://x}"), "spec.env.ALL_PROXY: is set by bottle-reconcile itself"},
		{"envFromHost reserved mixed case", withSpec("envFromHost: [No_Proxy]"), "spec.envFromHost[0]: No_Proxy is set by bottle-reconcile itself"},
		{"envFromHost reserved", withSpec("envFromHost: [no_proxy]"), "spec.envFromHost[0]: no_proxy is set by bottle-reconcile itself"},
		{"envFromHost bad name", withSpec("envFromHost: [A-B]"), "spec.envFromHost[0]: is not a valid environment variable name"},
		{"env in both", withSpec("env: {TOKEN: a}", "envFromHost: [TOKEN]"), "spec.envFromHost[0]: TOKEN is also set in spec.env"},
		{"envFromHost smolvm-sensitive", withSpec("envFromHost: [LD_PRELOAD]"), "spec.envFromHost[0]: LD_PRELOAD would change how smolvm itself runs"},
		{"cidr parse", withSpec("allowCIDRs: [300.1.1.0/24]"), `f.yaml:7:16: spec.allowCIDRs[0]: "300.1.1.0/24" is not a CIDR`},
		{"cidr host bits", withSpec("allowCIDRs: [198.51.100.7/24]"), "did you mean 198.51.100.0/24?"},
		{"cidr loopback", withSpec("allowCIDRs: [127.0.0.0/8]"), "f.yaml:7:16: spec.allowCIDRs[0]: 127.0.0.0/8 overlaps 127.0.0.0/8, which reaches the host's loopback; remove it"},
		// Spellings of refused ranges, and ranges that map onto them.
		{"cidr nat64", withSpec(`allowCIDRs: ["64:ff9b::/96"]`), "64:ff9b::/96 overlaps 64:ff9b::/96, which is NAT64"},
		{"cidr nat64 local", withSpec(`allowCIDRs: ["64:ff9b:1::/48"]`), "is local-use NAT64"},
		{"cidr 6to4", withSpec(`allowCIDRs: ["2002::/16"]`), "is 6to4"},
		{"cidr ipv4-compatible loopback", withSpec(`allowCIDRs: ["::7f00:1"]`), "::7f00:1/128 overlaps ::/96, which is IPv4-compatible IPv6"},
		{"cidr siit", withSpec(`allowCIDRs: ["::ffff:0:0:0/96"]`), "is IPv4-translated IPv6 (SIIT)"},
		{"cidr teredo", withSpec(`allowCIDRs: ["2001::/32"]`), "is Teredo"},
		{"cidr ula", withSpec(`allowCIDRs: ["fc00::/7"]`), "is unique local (ULA)"},
		{"cidr ipv6 metadata", withSpec(`allowCIDRs: ["fd00:ec2::254"]`), "fd00:ec2::254/128 overlaps fc00::/7"},
		{"cidr smolvm host loopback", withSpec(`allowCIDRs: [100.96.0.1]`), "is where smolvm maps the host's loopback into a guest"},
		{"cidr cgnat containing it", withSpec(`allowCIDRs: [100.64.0.0/10]`), "100.64.0.0/10 overlaps 100.96.0.1/32"},
		{"cidr loopback inside", withSpec("allowCIDRs: [127.0.0.1]"), "127.0.0.1/32 overlaps 127.0.0.0/8, which reaches the host's loopback"},
		{"cidr loopback v6", withSpec(`allowCIDRs: ["::1"]`), "::1/128 overlaps ::1/128, which reaches the host's loopback"},
		{"cidr loopback mapped", withSpec(`allowCIDRs: ["::ffff:127.0.0.1/128"]`), "::ffff:127.0.0.1/128 is the IPv4-mapped spelling of 127.0.0.1/32, which overlaps 127.0.0.0/8, which reaches the host's loopback"},
		{"cidr metadata", withSpec("allowCIDRs: [169.254.169.254/32]"), "is link-local, where cloud metadata"},
		{"cidr metadata mapped", withSpec(`allowCIDRs: ["::ffff:169.254.169.254"]`), "::ffff:169.254.169.254/128 is the IPv4-mapped spelling of 169.254.169.254/32, which overlaps 169.254.0.0/16, which is link-local, where cloud metadata (169.254.169.254) lives"},
		{"cidr link-local v6", withSpec(`allowCIDRs: ["fe80::/64"]`), "fe80::/64 overlaps fe80::/10, which is link-local"},
		{"cidr unspecified", withSpec("allowCIDRs: [0.0.0.0/32]"), "unspecified"},
		{"cidr unspecified v6", withSpec(`allowCIDRs: ["::/128"]`), "::/128 overlaps ::/128, which is the unspecified address"},
		{"cidr default v4", withSpec("allowCIDRs: [0.0.0.0/0]"), "0.0.0.0/0 is a default route"},
		{"cidr default v6", withSpec(`allowCIDRs: ["::/0"]`), "::/0 is a default route"},
		{"cidr default mapped", withSpec(`allowCIDRs: ["::ffff:0.0.0.0/96"]`), "::ffff:0.0.0.0/96 contains ::ffff:0.0.0.0/96, the IPv4-mapped spelling of all of IPv4: it would open the guest to everything"},
		{"cidr default mapped wider", withSpec(`allowCIDRs: ["::/80"]`), "::/80 contains ::ffff:0.0.0.0/96, the IPv4-mapped spelling of all of IPv4: it would open the guest to everything"},
		{"cidr unspecified mapped", withSpec(`allowCIDRs: ["::ffff:0.0.0.0"]`), "::ffff:0.0.0.0/128 is the IPv4-mapped spelling of 0.0.0.0/32, which overlaps 0.0.0.0/8, which is the unspecified (\"this host\") range"},
		{"cidr link-local mapped range", withSpec(`allowCIDRs: ["::ffff:169.254.0.0/112"]`), "::ffff:169.254.0.0/112 is the IPv4-mapped spelling of 169.254.0.0/16, which overlaps 169.254.0.0/16, which is link-local, where cloud metadata (169.254.169.254) lives"},
		{"cidr loopback v6 range", withSpec(`allowCIDRs: ["::/127"]`), "::/127 overlaps ::/128, which is the unspecified address"},
		{"cidr wide includes loopback", withSpec("allowCIDRs: [96.0.0.0/3]"), "96.0.0.0/3 overlaps 100.96.0.1/32, which is where smolvm maps the host's loopback into a guest"},
		{"cidr pool", withSpec("allowCIDRs: [10.213.7.0/24]"), "overlaps 10.213.0.0/16, the range bottle subnets are allocated from"},
		{"cidr covering pool", withSpec("allowCIDRs: [10.0.0.0/8]"), "overlaps 10.213.0.0/16"},
		{"cidr pool mapped", withSpec(`allowCIDRs: ["::ffff:10.213.0.1"]`), "overlaps 10.213.0.0/16"},
		{"subnet parse", withSpec("network: {subnet: banana}"), `spec.network.subnet: "banana" is not a CIDR`},
		{"subnet too small", withSpec("network: {subnet: 10.213.4.0/30}"), "is too small"},
		{"subnet v6", withSpec(`network: {subnet: "fd00::/64"}`), "is IPv6"},
		{"subnet host bits", withSpec("network: {subnet: 10.213.4.3/29}"), "did you mean 10.213.4.0/29?"},
		{"subnet loopback", withSpec("network: {subnet: 127.1.0.0/24}"), "reaches the host's loopback"},
		{"subnet outside pool", withSpec("network: {subnet: 10.99.0.0/29}"), "f.yaml:7:21: spec.network.subnet: 10.99.0.0/29 is outside the subnet pool 10.213.0.0/16 (--subnet-pool), which every bottle's egress gate refuses; a subnet outside it is not kept from other bottles: move it into 10.213.0.0/16, or run the reconciler with --allow-subnet-outside-pool"},
		{"subnet covering pool", withSpec("network: {subnet: 10.212.0.0/15}"), "is outside the subnet pool 10.213.0.0/16"},
		{"egress wildcard middle", withSpec(`egress: {allow: ["a.*.com"]}`), "a wildcard is only allowed as a leading"},
		{"egress wildcard tld", withSpec(`egress: {allow: ["*.com"]}`), "too broad"},
		{"egress url", withSpec(`egress: {allow: ["https://x.com/"]}`), "not a URL"},
		{"egress bad port", withSpec(`egress: {allow: ["x.com:0"]}`), "must be a number from 1 to 65535"},
		{"egress numeric", withSpec(`egress: {allow: ["2130706433"]}`), "is a numeric address"},
		{"egress underscore", withSpec(`egress: {allow: ["a_b.com"]}`), "only letters, digits"},
		{"egress duplicate normalised", withSpec(`egress: {allow: [x.com, "X.COM."]}`), "same rule as spec.egress.allow[0]"},
		{"egress bare wildcard", withSpec(`egress: {allow: ["*"]}`), "a wildcard is only allowed as a leading"},
		{"egress wildcard no dot", withSpec(`egress: {allow: ["*example.com"]}`), "a wildcard is only allowed as a leading"},
		{"egress trailing wildcard", withSpec(`egress: {allow: ["example.*"]}`), "a wildcard is only allowed as a leading"},
		{"egress empty port", withSpec(`egress: {allow: ["x.com:"]}`), "empty port"},
		{"egress port too big", withSpec(`egress: {allow: ["x.com:65536"]}`), "must be a number from 1 to 65535"},
		{"egress empty label", withSpec(`egress: {allow: ["a..com"]}`), "empty label"},
		{"egress leading hyphen", withSpec(`egress: {allow: ["-a.com"]}`), "starts or ends with '-'"},
		{"egress octal", withSpec(`egress: {allow: ["0177.0.0.1"]}`), "is a numeric address"},
		{"egress whitespace", withSpec(`egress: {allow: [" x.com"]}`), "surrounding whitespace"},
		{"egress zone", withSpec(`egress: {allow: ["[fe80::1%eth0]:443"]}`), "zone"},
		{"egress without daemons", withSpec(`egress: {allow: [x.com]}`, "daemons: []"), "has no effect because spec.daemons runs neither"},
		// Address literals the gate would dial because a rule names them.
		{"egress metadata", withSpec(`egress: {allow: ["169.254.169.254"]}`), `f.yaml:7:20: spec.egress.allow[0]: "169.254.169.254" names 169.254.169.254, which is in 169.254.0.0/16, which is link-local, where cloud metadata (169.254.169.254) lives; a rule naming an address lets the gate dial it: remove it`},
		{"egress loopback v6 port", withSpec(`egress: {allow: ["[::1]:53"]}`), "names ::1, which is in ::1/128, which reaches the host's loopback"},
		{"egress loopback", withSpec(`egress: {allow: ["127.0.0.1:9099"]}`), "which is in 127.0.0.0/8"},
		{"egress pool", withSpec(`egress: {allow: ["10.213.0.2:3128"]}`), "names 10.213.0.2, which is in 10.213.0.0/16, the range bottle subnets are allocated from"},
		{"egress metadata mapped", withSpec(`egress: {allow: ["[::ffff:169.254.169.254]:80"]}`), "names 169.254.169.254, which is in 169.254.0.0/16"},
		{"egress metadata nat64", withSpec(`egress: {allow: ["64:ff9b::a9fe:a9fe"]}`), "names 64:ff9b::a9fe:a9fe, which is the NAT64 form of 169.254.169.254, which is in 169.254.0.0/16"},
		{"egress pool nat64", withSpec(`egress: {allow: ["64:ff9b::ad5:2"]}`), "is the NAT64 form of 10.213.0.2, which is in 10.213.0.0/16, the range bottle subnets"},
		{"egress loopback 6to4", withSpec(`egress: {allow: ["2002:7f00:1::1"]}`), "is the 6to4 form of 127.0.0.1"},
		{"egress ipv4-compatible", withSpec(`egress: {allow: ["::7f00:1"]}`), "which is in ::/96, which is IPv4-compatible IPv6"},
		{"egress siit", withSpec(`egress: {allow: ["::ffff:0:a9fe:a9fe"]}`), "which is in ::ffff:0:0:0/96, which is IPv4-translated IPv6 (SIIT)"},
		{"egress local nat64", withSpec(`egress: {allow: ["64:ff9b:1::1"]}`), "is local-use NAT64"},
		{"egress teredo", withSpec(`egress: {allow: ["2001::1"]}`), "is Teredo"},
		{"egress ipv6 metadata", withSpec(`egress: {allow: ["fd00:ec2::254"]}`), "which is in fc00::/7, which is unique local (ULA)"},
		{"egress link-local v6", withSpec(`egress: {allow: ["[fe80::1]:443"]}`), "which is in fe80::/10"},
		{"egress smolvm host loopback", withSpec(`egress: {allow: ["100.96.0.1"]}`), "is where smolvm maps the host's loopback"},
		{"egress unspecified", withSpec(`egress: {allow: ["0.0.0.0"]}`), "is the unspecified"},
		{"egress broadcast", withSpec(`egress: {allow: ["255.255.255.255"]}`), "is reserved or broadcast"},
		{"egress multicast", withSpec(`egress: {allow: ["224.0.0.251"]}`), "is multicast"},
		// Wildcards over a suffix anyone can register under.
		{"egress wildcard public suffix", withSpec(`egress: {allow: ["*.co.uk"]}`), `f.yaml:7:20: spec.egress.allow[0]: "*.co.uk" covers every name registered under co.uk, a public suffix: anyone can register one and receive what the guest sends; name a registered domain, e.g. *.example.co.uk`},
		{"egress wildcard public suffix port", withSpec(`egress: {allow: ["*.com.au:443"]}`), "covers every name registered under com.au"},
		{"egress wildcard public suffix by rule", withSpec(`egress: {allow: ["*.foo.kawasaki.jp"]}`), "under foo.kawasaki.jp, a public suffix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRefused(t, tt.doc, tt.want) })
	}
}

func TestParseNormalisesAndDefaults(t *testing.T) {
	doc := withSpec(
		`egress: {allow: ["API.Example.COM.", "*.GitHub.com", "bücher.example:8443", "198.51.100.7"]}`,
		`allowCIDRs: ["198.51.100.9"]`,
	)
	b, name, _, problems := Parse("f.yaml", []byte(doc), Options{})
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if name != "alice" || b.Metadata.Name != "alice" {
		t.Fatalf("name = %q", name)
	}
	want := []string{"api.example.com", "*.github.com", "xn--bcher-kva.example:8443", "198.51.100.7"}
	if strings.Join(b.Spec.Egress.Allow, " ") != strings.Join(want, " ") {
		t.Errorf("allow = %v, want %v", b.Spec.Egress.Allow, want)
	}
	if b.Spec.AllowCIDRs[0] != "198.51.100.9/32" {
		t.Errorf("allowCIDRs = %v", b.Spec.AllowCIDRs)
	}
	if b.Spec.Guest != GuestSmolvm || len(b.Spec.Daemons) != 2 || b.Spec.Resources.CPUs != DefaultCPUs || b.Spec.Resources.MemoryMiB != DefaultMemoryMiB || b.Spec.PullPolicy != PullMissing {
		t.Errorf("defaults not applied: %+v", b.Spec)
	}
}

// What egress.allow may still name: a team's own private or public
// addresses, NAT64 forms of public ones, wildcards under a registered
// domain; a wildcard over a private-section public suffix is valid with a
// warning.
func TestEgressAllowAccepted(t *testing.T) {
	for _, tt := range []struct {
		rule, warning string
	}{
		{"10.9.9.9", ""},
		{"192.168.1.10:8080", ""},
		{"100.101.2.3", ""},
		{"198.51.100.7", ""},
		{"[2606:4700::1111]:443", ""},
		{"64:ff9b::c633:6407", ""}, // NAT64 of 198.51.100.7
		{"*.github.com", ""},
		{"*.example.co.uk", ""},
		{"*.wild.test", ""},
		{"*.github.io", `f.yaml:7:20: spec.egress.allow[0]: "*.github.io" covers names that anyone can get under github.io (a public suffix in the private section of the Public Suffix List): any of them can receive what the guest sends; name the hosts you need, e.g. acme.github.io`},
		{"*.s3.amazonaws.com:443", "anyone can get under s3.amazonaws.com"},
	} {
		b, _, _, ps := Parse("f.yaml", []byte(withSpec(`egress: {allow: ["`+tt.rule+`"]}`)), Options{})
		if b == nil || len(ps) > 0 {
			t.Errorf("%s refused: %v", tt.rule, ps)
			continue
		}
		var got []string
		for _, w := range b.warnings {
			got = append(got, w.String())
		}
		if text := strings.Join(got, "\n"); (tt.warning == "") != (text == "") || !strings.Contains(text, tt.warning) {
			t.Errorf("%s: warnings %q, want %q", tt.rule, text, tt.warning)
		}
	}
}

// Warnings reach the Result with their positions, for valid bottles only,
// through the cache and verdicts as well as a fresh load.
func TestLoadWarnings(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", withSpec(`egress: {allow: [x.com, "*.github.io"]}`))
	write(t, dir, "b.yaml", named("bob")+`  egress: {allow: ["*.github.io"]}`+"\n  allowCIDRs: [127.0.0.1]\n")
	write(t, dir, "c.yaml", named("carol"))
	state := filepath.Join(t.TempDir(), "verdicts.json")
	c := NewCache()
	for i := range 3 {
		v := OpenVerdicts(state)
		r, err := LoadDir(dir, Options{Cache: c, Verdicts: v})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Save(); err != nil {
			t.Fatal(err)
		}
		if len(r.Warnings) != 1 {
			t.Fatalf("load %d: warnings %v, want one for a.yaml", i, r.Warnings)
		}
		w := r.Warnings[0]
		if filepath.Base(w.File) != "a.yaml" || w.Line != 7 || w.Column != 27 || w.Field != "spec.egress.allow[1]" {
			t.Errorf("load %d: warning %+v", i, w)
		}
		if len(r.Problems) != 1 || len(r.Bottles) != 2 {
			t.Errorf("load %d: problems %v, bottles %d", i, r.Problems, len(r.Bottles))
		}
		c = nil // the next loads go through the verdicts
	}
}

func TestDaemonsEmptyIsNotDefault(t *testing.T) {
	b, _, _, problems := Parse("f.yaml", []byte(withSpec("daemons: []")), Options{})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if b.Spec.Daemons == nil || len(b.Spec.Daemons) != 0 {
		t.Fatalf("daemons = %#v, want empty", b.Spec.Daemons)
	}
}

func TestPoolOption(t *testing.T) {
	doc := withSpec("allowCIDRs: [10.213.7.0/24]")
	// With another pool the same CIDR is fine, and the pool's range is refused.
	if _, _, _, ps := Parse("f.yaml", []byte(doc), Options{Pool: mustPrefix(t, "10.99.0.0/16")}); len(ps) > 0 {
		t.Fatalf("refused with another pool: %v", ps)
	}
	doc = withSpec("allowCIDRs: [10.99.1.0/24]")
	if _, _, _, ps := Parse("f.yaml", []byte(doc), Options{Pool: mustPrefix(t, "10.99.0.0/16")}); len(ps) == 0 {
		t.Fatal("pool range accepted")
	}
}

// A subnet outside the pool is accepted only when the reconciler is told
// to; even then allowCIDRs may not reach into the bottle's own subnet (its
// gateway is the host), which the pool check no longer covers.
func TestSubnetOutsidePool(t *testing.T) {
	outside := Options{AllowSubnetOutsidePool: true}
	tests := []struct {
		name string
		doc  string
		opts Options
		want string // "" for valid
	}{
		{"inside the pool", withSpec("network: {subnet: 10.213.4.0/29}"), Options{}, ""},
		{"the whole pool", withSpec("network: {subnet: 10.213.0.0/16}"), Options{}, ""},
		{"outside", withSpec("network: {subnet: 10.99.0.0/29}"), Options{}, "outside the subnet pool"},
		{"outside, allowed", withSpec("network: {subnet: 10.99.0.0/29}"), outside, ""},
		{"inside another pool", withSpec("network: {subnet: 10.99.0.0/29}"), Options{Pool: mustPrefix(t, "10.99.0.0/24")}, ""},
		{"own subnet in allowCIDRs", withSpec("network: {subnet: 10.99.0.0/29}", "allowCIDRs: [10.99.0.0/24]"), outside,
			"spec.allowCIDRs[0]: 10.99.0.0/24 overlaps 10.99.0.0/29, this bottle's own subnet (spec.network.subnet), whose gateway is the host"},
		{"own gateway mapped", withSpec("network: {subnet: 10.99.0.0/29}", `allowCIDRs: ["::ffff:10.99.0.1"]`), outside, "this bottle's own subnet"},
		{"next to own subnet", withSpec("network: {subnet: 10.99.0.0/29}", "allowCIDRs: [10.99.0.8/29]"), outside, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _, ps := Parse("f.yaml", []byte(tt.doc), tt.opts)
			if tt.want == "" {
				if b == nil || len(ps) > 0 {
					t.Fatalf("refused: %v", ps)
				}
				return
			}
			if b != nil || len(ps) != 1 || !strings.Contains(ps[0].String(), tt.want) {
				t.Fatalf("problems %v, want one mentioning %q", ps, tt.want)
			}
		})
	}
}

// The cache and the verdicts are keyed by every option: a file found valid
// with --allow-subnet-outside-pool is not valid without it.
func TestSubnetOutsidePoolIsNotCachedAcross(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", withSpec("network: {subnet: 10.99.0.0/29}"))
	c := NewCache()
	v := OpenVerdicts(filepath.Join(t.TempDir(), "verdicts.json"))
	for _, tt := range []struct {
		allow bool
		valid bool
	}{{true, true}, {false, false}, {true, true}, {false, false}} {
		r, err := LoadDir(dir, Options{AllowSubnetOutsidePool: tt.allow, Cache: c, Verdicts: v})
		if err != nil {
			t.Fatal(err)
		}
		if r.OK() != tt.valid {
			t.Fatalf("allow %v: valid %v, want %v: %v", tt.allow, r.OK(), tt.valid, r.Problems)
		}
	}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func named(n string) string { return strings.Replace(valid, "name: alice", "name: "+n, 1) }

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", named("a"))
	write(t, dir, "b.yml", named("b"))
	// Files that are not specs, whatever they hold.
	for _, n := range []string{".hidden.yaml", "a.yaml~", "a.yaml.swp", ".a.yaml.swx", "a.yaml.bak", "a.yaml.orig", "#a.yaml#", "4913", "notes.txt", "c.json"} {
		write(t, dir, n, "not: [a spec")
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sub.yaml"), "nested.yaml", named("nested"))
	// Duplicates: neither wins, both are reported, the name is held.
	write(t, dir, "d1.yaml", named("dup"))
	write(t, dir, "d2.yaml", named("dup"))
	// Invalid with a readable name: held. Invalid without one: unattributed.
	write(t, dir, "e.yaml", strings.Replace(named("broken"), "image:", "imag:", 1))
	write(t, dir, "f.yaml", "::: nope")
	write(t, dir, "big.yaml", valid+"#"+strings.Repeat("x", MaxFileBytes))
	// Exactly at the limit is still read.
	write(t, dir, "c.yaml", named("c")+"#"+strings.Repeat("x", MaxFileBytes-len(named("c"))-2)+"\n")

	r, err := LoadDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range r.Bottles {
		got = append(got, b.Metadata.Name+"@"+filepath.Base(b.Source))
	}
	if strings.Join(got, " ") != "a@a.yaml b@b.yml c@c.yaml" {
		t.Errorf("bottles = %v", got)
	}
	var base []string
	for _, f := range r.Files {
		base = append(base, filepath.Base(f))
	}
	if strings.Join(base, " ") != "a.yaml b.yml big.yaml c.yaml d1.yaml d2.yaml e.yaml f.yaml" {
		t.Errorf("files = %v, want the 8 spec files in sorted order", base)
	}
	if r.Held["dup"] == "" || r.Held["broken"] == "" {
		t.Errorf("held = %v", r.Held)
	}
	if len(r.Unattributed) != 2 { // f.yaml and big.yaml
		t.Errorf("unattributed = %v", r.Unattributed)
	}
	text := ""
	for _, p := range r.Problems {
		text += p.String() + "\n"
	}
	if strings.Contains(text, "image reference") {
		t.Errorf("a missing image is also reported as an invalid reference:\n%s", text)
	}
	for _, want := range []string{
		"d1.yaml:4:9: metadata.name: bottle \"dup\" is defined by more than one file (also " + filepath.Join(dir, "d2.yaml"),
		"d2.yaml:4:9: metadata.name: bottle \"dup\" is defined by more than one file (also " + filepath.Join(dir, "d1.yaml"),
		"big.yaml:1:1: file is larger than 1048576 bytes",
		"e.yaml:6:3: spec.imag: unknown field; did you mean image?",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
}

func TestLoadDirErrors(t *testing.T) {
	if _, err := LoadDir(filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Fatal("a missing directory must be an error, not zero bottles")
	}
}

func TestLoadDirFollowsSymlinks(t *testing.T) {
	// A Kubernetes ConfigMap mount: files are links into ..data, itself a link.
	dir := t.TempDir()
	data := filepath.Join(dir, "..2026_11_28")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, data, "a.yaml", named("a"))
	if err := os.Symlink("..2026_11_28", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/a.yaml", filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	r, err := LoadDir(dir, Options{})
	if err != nil || len(r.Bottles) != 1 || len(r.Problems) != 0 {
		t.Fatalf("r = %+v, err = %v", r, err)
	}
}

func TestExampleSpecs(t *testing.T) {
	// Offline: an example's workspace is a path on the reconciler's host,
	// which this one need not have (TestWorkspaceExample checks it with a
	// temp dir in its place).
	for _, dir := range []string{"../specs", "../demo/specs"} {
		r, err := LoadDir(dir, Options{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Problems {
			t.Error(p)
		}
		if len(r.Files) == 0 || len(r.Bottles) != len(r.Files) {
			t.Fatalf("%s: loaded %d bottles from %d files", dir, len(r.Bottles), len(r.Files))
		}
	}
}

func TestLoadFilesDuplicates(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", named("x"))
	b := write(t, dir, "b.yaml", strings.Replace(named("x"), "image:", "imag:", 1)) // invalid, same name
	c := write(t, dir, "c.yaml", strings.Replace(named("yy"), "image:", "imag:", 1))
	d := write(t, dir, "d.yaml", strings.Replace(named("yy"), "image:", "imag:", 1))
	r := LoadFiles([]string{a, b, c, d, a, filepath.Join(dir, ".", "a.yaml")}, Options{})
	text := ""
	for _, p := range r.Problems {
		text += p.String() + "\n"
	}
	for _, want := range []string{
		a + `:4:9: metadata.name: bottle "x" is defined by more than one file (also ` + b + ")",
		b + `:4:9: metadata.name: bottle "x" is defined by more than one file (also ` + a + ")",
		c + `:4:9: metadata.name: bottle "yy" is defined by more than one file (also ` + d + ")",
		d + `:4:9: metadata.name: bottle "yy" is defined by more than one file (also ` + c + ")",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "(also )") || len(r.Files) != 4 || len(r.Bottles) != 0 {
		t.Errorf("files %v, bottles %d, problems:\n%s", r.Files, len(r.Bottles), text)
	}
	if r.Held["x"] == "" || r.Held["yy"] == "" {
		t.Errorf("held = %v", r.Held)
	}
	// One file named twice is one file.
	r = LoadFiles([]string{a, a}, Options{})
	if !r.OK() || len(r.Bottles) != 1 || len(r.Files) != 1 {
		t.Errorf("a file named twice: files %v, problems %v", r.Files, r.Problems)
	}
}

// TestParseHugeInvalid parses a file just under the size cap full of
// problems (and a smaller one): the work must grow linearly (such a file took over a minute
// when each problem walked the whole document) and the report is capped.
func TestParseHugeInvalid(t *testing.T) {
	if testing.Short() {
		t.Skip("parses a 1 MiB file")
	}
	var keys, env strings.Builder
	for i := 0; keys.Len() < MaxFileBytes-100; i++ {
		fmt.Fprintf(&keys, "k%d: v\n", i)
	}
	env.WriteString(withSpec("envFromHost:"))
	for i := 0; env.Len() < MaxFileBytes/8; i++ {
		fmt.Fprintf(&env, "  - \"%d-x\"\n", i)
	}
	for name, doc := range map[string]string{"unknown keys": keys.String(), "bad names": env.String()} {
		start := time.Now()
		_, _, _, ps := Parse("f.yaml", []byte(doc), Options{})
		if el := time.Since(start); el > 20*time.Second && !raceEnabled {
			t.Errorf("%s: %v to parse %d bytes", name, el, len(doc))
		}
		if len(ps) != MaxProblemsPerFile+1 || !strings.Contains(ps[MaxProblemsPerFile].Message, "more problems in this file are not shown") {
			t.Errorf("%s: %d problems, want %d and a last one counting the rest", name, len(ps), MaxProblemsPerFile+1)
		}
		if ps[0].Line < 1 || ps[0].Line > ps[MaxProblemsPerFile-1].Line {
			t.Errorf("%s: shown problems are not the first ones: %v ... %v", name, ps[0], ps[MaxProblemsPerFile-1])
		}
	}
}

func TestEnvFromHostSensitiveIsFineForDockerGuests(t *testing.T) {
	if _, _, _, ps := Parse("f.yaml", []byte(withSpec("guest: docker", "envFromHost: [LD_PRELOAD, PATH]")), Options{}); len(ps) > 0 {
		t.Fatalf("refused for a docker guest: %v", ps)
	}
}
