package sidecar

import (
	"context"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
)

// These tests need no Docker: they pin down what the bundle container is
// created with, so a weakened setting fails here and not only (or never)
// in a test against a daemon.

func TestBundleHostConfigHardening(t *testing.T) {
	hc := hostConfig("bottle-a")
	checks := []struct {
		setting string
		ok      bool
	}{
		{"network mode is the bottle network", hc.NetworkMode == "bottle-a"},
		{"not privileged", !hc.Privileged},
		{"every capability dropped", slices.Equal(hc.CapDrop, []string{"ALL"})},
		{"no capability added", len(hc.CapAdd) == 0},
		{"no-new-privileges", slices.Equal(hc.SecurityOpt, []string{"no-new-privileges"})},
		{"read-only root filesystem", hc.ReadonlyRootfs},
		{"no restart policy (the reconciler heals)", hc.RestartPolicy.Name == container.RestartPolicyDisabled},
		{"pids limit", hc.PidsLimit != nil && *hc.PidsLimit == bundlePidsLimit && bundlePidsLimit == 128},
		{"memory limit", hc.Memory == 128<<20},
		{"no swap on top of memory", hc.MemorySwap == hc.Memory},
		{"unprivileged port 53", hc.Sysctls["net.ipv4.ip_unprivileged_port_start"] == "0"},
		{"no mounts", len(hc.Binds) == 0 && len(hc.Mounts) == 0 && len(hc.VolumesFrom) == 0 && len(hc.Tmpfs) == 0},
		{"no published ports", len(hc.PortBindings) == 0 && !hc.PublishAllPorts},
		{"no devices", len(hc.Devices) == 0},
		{"host namespaces not shared", hc.PidMode == "" && hc.IpcMode == "" && hc.UTSMode == "" && hc.UsernsMode == ""},
		// The ready line is read from the log stream, so the driver must be
		// a readable one; what a guest makes the bundle log is stored on
		// the host, so it is rotated.
		{"rotated json-file logs", hc.LogConfig.Type == "json-file" && hc.LogConfig.Config["max-size"] == "10m" && hc.LogConfig.Config["max-file"] == "3"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("bundle host config: %s does not hold", c.setting)
		}
	}

	// And nothing else: the whole config written out, so a setting added
	// without a test here (a bind, a capability) fails too.
	pids := int64(128)
	sysctls := map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		sysctls["net.ipv6.conf.all.disable_ipv6"] = "1"
		sysctls["net.ipv6.conf.default.disable_ipv6"] = "1"
	}
	want := &container.HostConfig{
		NetworkMode:    "bottle-a",
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		Sysctls:        sysctls,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		Resources:      container.Resources{PidsLimit: &pids, Memory: 128 << 20, MemorySwap: 128 << 20},
	}
	if !reflect.DeepEqual(hc, want) {
		t.Errorf("bundle host config:\n got %+v\nwant %+v", hc, want)
	}
}

func TestBundleContainerConfig(t *testing.T) {
	labels := map[string]string{bottle.LabelBottle: "a"}
	cc := containerConfig("bottle-reconcile-bundle:x", `{"bottle":"a"}`, labels)
	want := &container.Config{
		Image:       "bottle-reconcile-bundle:x",
		User:        "65534:65534", // nobody, never root
		Entrypoint:  []string{binaryPath},
		Cmd:         []string{"bundle", "run"},
		Env:         []string{bundle.ConfigEnv + `={"bottle":"a"}`},
		Labels:      labels,
		Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}, // overrides any HEALTHCHECK in the image
	}
	if !reflect.DeepEqual(cc, want) {
		t.Errorf("bundle container config:\n got %+v\nwant %+v", cc, want)
	}
	if len(cc.ExposedPorts) != 0 || len(cc.Volumes) != 0 || cc.Tty || cc.OpenStdin {
		t.Errorf("bundle container config exposes ports, volumes or a terminal: %+v", cc)
	}
}

// TestBundleConfigWire checks what the driver hands the bundle: the spec's
// rules in canonical form, the pool and the host's addresses to refuse, the
// upstream, the DNS limits, and that the
// bundle program decodes exactly that.
func TestBundleConfigWire(t *testing.T) {
	pool := netip.MustParsePrefix("10.213.0.0/16")
	d := &Driver{base: base{opts: Options{Pool: pool, DNSUpstream: "192.0.2.53:53",
		DNSQueryRate: 12.5, DNSQueryBurst: 30, MaxWildcardBytes: 20}}}
	w := bottle.Want{
		Bottle:     "alice",
		Bundle:     bottle.BundleInputs{Daemons: []string{"egress", "dns"}, Allow: []string{"API.Example.com", "*.example.org:8443", "192.0.2.7:443"}},
		BundleAddr: netip.MustParseAddr("10.213.0.10"),
	}
	hosts := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")}
	enc, err := d.bundleConfig(w, hosts)
	if err != nil {
		t.Fatalf("bundleConfig: %v", err)
	}
	got, err := bundle.DecodeConfig(enc)
	if err != nil {
		t.Fatalf("DecodeConfig(%s): %v", enc, err)
	}
	want := bundle.Config{
		Bottle:   "alice",
		Daemons:  []string{"egress", "dns"},
		Allow:    []string{"api.example.com", "*.example.org:8443", "192.0.2.7:443"},
		Listen:   netip.MustParseAddr("10.213.0.10"),
		Refuse:   []netip.Prefix{pool},
		Upstream: "192.0.2.53:53",

		HostAddrs:    hosts,
		DNSQueryRate: 12.5, DNSQueryBurst: 30, MaxWildcardBytes: 20,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bundle config on the wire:\n got %+v\nwant %+v\n(%s)", got, want, enc)
	}

	w.Bundle.Allow = []string{"ok.example.com", "http://bad.example.com/"}
	if _, err := d.bundleConfig(w, nil); err == nil || !strings.Contains(err.Error(), `"http://bad.example.com/"`) {
		t.Errorf("bundleConfig with a URL rule: err = %v, want one naming the rule", err)
	}
}

// TestBundleHashFacts: the host's addresses and DNS limits set by flag are
// hashed into bundles, and nothing is when there are none (so an upgrade on
// such a host recreates nothing); a changed address set changes the facts.
func TestBundleHashFacts(t *testing.T) {
	hosts := []netip.Addr{}
	tests := []struct {
		name  string
		opts  Options
		hosts []string
		want  string
	}{
		{"defaults, no public address", Options{}, nil, ""},
		{"one public address", Options{}, []string{"203.0.113.9"}, "hosts=203.0.113.9"},
		{"two", Options{}, []string{"203.0.113.9", "2001:db8::9"}, "hosts=203.0.113.9,2001:db8::9"},
		{"DNS limits", Options{DNSQueryRate: 10}, nil, "dns=10/0/0"},
		{"both", Options{MaxWildcardBytes: 30}, []string{"203.0.113.9"}, "hosts=203.0.113.9;dns=0/0/30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hosts = hosts[:0]
			for _, h := range tt.hosts {
				hosts = append(hosts, netip.MustParseAddr(h))
			}
			o := tt.opts
			o.HostAddrs = func() ([]netip.Addr, error) { return hosts, nil }
			d := &Driver{base: base{opts: o}}
			got, err := d.HashFacts(context.Background())
			if err != nil || got != tt.want {
				t.Errorf("HashFacts = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestDNSLimitDefaults: a DNS limit spelled as its default is unset (so it
// is not hashed and recreates nothing); a negative one is refused.
func TestDNSLimitDefaults(t *testing.T) {
	o, err := Options{DNSQueryRate: 100, DNSQueryBurst: 1000, MaxWildcardBytes: 63}.withDefaults()
	if err != nil || o.DNSQueryRate != 0 || o.DNSQueryBurst != 0 || o.MaxWildcardBytes != 0 {
		t.Errorf("defaults spelled out = %g/%d/%d, %v; want all unset", o.DNSQueryRate, o.DNSQueryBurst, o.MaxWildcardBytes, err)
	}
	if o, err = (Options{DNSQueryRate: 5, DNSQueryBurst: 7, MaxWildcardBytes: 9}).withDefaults(); err != nil || o.DNSQueryRate != 5 || o.DNSQueryBurst != 7 || o.MaxWildcardBytes != 9 {
		t.Errorf("limits set = %g/%d/%d, %v; want them kept", o.DNSQueryRate, o.DNSQueryBurst, o.MaxWildcardBytes, err)
	}
	for _, bad := range []Options{{DNSQueryRate: -1}, {DNSQueryBurst: -1}, {MaxWildcardBytes: -1}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("withDefaults(%+v) succeeded, want an error", bad)
		}
	}
}
