package reconciler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// goldenSpecs are the specs whose hashes must never change: the examples
// in specs/ and demo/specs/, and edge cases of the fields hashed.
func goldenSpecs(t *testing.T) map[string]spec.Spec {
	t.Helper()
	out := map[string]spec.Spec{}
	files, _ := filepath.Glob("../specs/*.yaml")
	demo, _ := filepath.Glob("../demo/specs/*.yaml")
	for _, f := range append(files, demo...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, _, _, problems := spec.Parse(f, data, spec.Options{})
		for _, p := range problems {
			// The example workspace is not on this host; the spec is whole.
			if p.Field != "spec.workspace.hostPath" {
				t.Fatalf("%s: %v", f, p)
			}
		}
		out[strings.TrimPrefix(f, "../")] = b.Spec
	}
	base := spec.Spec{Guest: spec.GuestSmolvm, Image: "ghcr.io/acme/agent:1", PullPolicy: spec.PullMissing,
		Daemons: []string{spec.DaemonEgress, spec.DaemonDNS}, Resources: spec.Resources{CPUs: 2, MemoryMiB: 2048}}
	edge := map[string]func(*spec.Spec){
		"base":              func(*spec.Spec) {},
		"empty env":         func(s *spec.Spec) { s.Env = map[string]string{} },
		"env":               func(s *spec.Spec) { s.Env = map[string]string{"B": "2", "A": "1"} },
		"empty envFromHost": func(s *spec.Spec) { s.EnvFromHost = []string{} },
		"envFromHost":       func(s *spec.Spec) { s.EnvFromHost = []string{"TOKEN", "A_KEY"} },
		"env and host":      func(s *spec.Spec) { s.Env = map[string]string{"A": "1"}; s.EnvFromHost = []string{"TOKEN"} },
		"workspace":         func(s *spec.Spec) { s.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work"} },
		"workspace ro": func(s *spec.Spec) {
			s.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work", ReadOnly: true}
		},
		"daemons none":   func(s *spec.Spec) { s.Daemons = []string{} },
		"daemons egress": func(s *spec.Spec) { s.Daemons = []string{spec.DaemonEgress} },
		"daemons dns":    func(s *spec.Spec) { s.Daemons = []string{spec.DaemonDNS} },
		"allow":          func(s *spec.Spec) { s.Egress.Allow = []string{"b.example", "*.a.example:443"} },
		"allowCIDRs":     func(s *spec.Spec) { s.AllowCIDRs = []string{"198.51.100.0/24", "192.0.2.0/24"} },
		"docker":         func(s *spec.Spec) { s.Guest = spec.GuestDocker },
		"resources":      func(s *spec.Spec) { s.Resources = spec.Resources{CPUs: 4, MemoryMiB: 512} },
		"pull always":    func(s *spec.Spec) { s.PullPolicy = spec.PullAlways },
	}
	for name, edit := range edge {
		s := base
		edit(&s)
		out["edge/"+name] = s
	}
	return out
}

// The hashes of every example and edge case, as computed before Want
// carried resolved role inputs (commit 3b05ac3): an upgrade must recreate
// no running bottle, so these never change.
var goldenHashes = map[string][3]string{ // network, bundle, guest
	"demo/specs/alice.yaml":   {"bde7b0d7da00731b3adc3acfb964e74a", "2c0b5e5ab23ad0e27f8d3b2a66076a32", "0cb24dbf548b7baa64f3cee98e87d745"},
	"demo/specs/bob.yaml":     {"bde7b0d7da00731b3adc3acfb964e74a", "b19183579e8aec3f5133637fdee19126", "e93774522f6834811fefaa0e14ca5842"},
	"edge/allow":              {"728a54b1863456c20a085d0b549760b1", "efa8f80074039396d0ee19fdc3b5f62a", "92a85aca5e62b84113c29a09c9e4cc63"},
	"edge/allowCIDRs":         {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "8d3851b3b11349502cc73e56f1931d2a"},
	"edge/base":               {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "92a85aca5e62b84113c29a09c9e4cc63"},
	"edge/daemons dns":        {"728a54b1863456c20a085d0b549760b1", "3f713c101f52879d6a27912f754c9ee1", "b801cb3b1b8a71c5bc5e4391cf2f6693"},
	"edge/daemons egress":     {"728a54b1863456c20a085d0b549760b1", "31665b4deb4b68ec7e5a6c13f8c95f3e", "0b81d2dece152059fbdb28d579198641"},
	"edge/daemons none":       {"728a54b1863456c20a085d0b549760b1", "b19183579e8aec3f5133637fdee19126", "cb41c370ef2902a92dc6a2035076ce24"},
	"edge/docker":             {"bde7b0d7da00731b3adc3acfb964e74a", "70acfb7ae25a42413e031ca94b5ecd12", "bcdd7f4f886e4a61b04a78a0092a0738"},
	"edge/empty env":          {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "0962538411732b2db540db14bd47cfa4"},
	"edge/empty envFromHost":  {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "92a85aca5e62b84113c29a09c9e4cc63"},
	"edge/env and host":       {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "27d62dec1609b377faf62ae039b27952"},
	"edge/env":                {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "3f8969b24e19b4752e236f84189e0696"},
	"edge/envFromHost":        {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "f1dd17158cefd6f68f246d03d53860a1"},
	"edge/pull always":        {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "92a85aca5e62b84113c29a09c9e4cc63"},
	"edge/resources":          {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "1ff6c1448545aba9f2df7d2a5513b7a1"},
	"edge/workspace ro":       {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "00b4bfc9c9e6dfc50e9eb2a05f93db03"},
	"edge/workspace":          {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "29b8d0abb9ab3564812c2e3caaeb7a61"},
	"specs/alice.yaml":        {"728a54b1863456c20a085d0b549760b1", "5e6e83583d1db62a1827462fb28d47f5", "81a69a431ba253801f64e7435fe8ddd0"},
	"specs/docker-guest.yaml": {"bde7b0d7da00731b3adc3acfb964e74a", "ce4693f2902234fc4d670c6189237962", "9c3dba8f6f51aba7a93ed49ac041bd6b"},
	"specs/minimal.yaml":      {"728a54b1863456c20a085d0b549760b1", "70acfb7ae25a42413e031ca94b5ecd12", "74cfc69d4270f5d1ad8f84f06d7c0ab7"},
	"specs/offline.yaml":      {"728a54b1863456c20a085d0b549760b1", "b19183579e8aec3f5133637fdee19126", "9d782cb7453265504f3f1432baef553b"},
	"specs/workspace.yaml":    {"bde7b0d7da00731b3adc3acfb964e74a", "4e761c39fbb6d2a5b9ee6f3e412125a9", "a40339ed4337f26a9c7d27c43938a4a5"},
}

func TestHashGolden(t *testing.T) {
	specs := goldenSpecs(t)
	for name, s := range specs {
		got := [3]string{Hash(bottle.RoleNetwork, s), Hash(bottle.RoleBundle, s), Hash(bottle.RoleGuest, s)}
		want, ok := goldenHashes[name]
		if !ok {
			t.Errorf("%s: no golden hashes; add %q", name, got)
			continue
		}
		if got != want {
			t.Errorf("%s: hashes (network, bundle, guest) = %q, want %q", name, got, want)
		}
	}
	if len(specs) != len(goldenHashes) {
		t.Errorf("%d specs, %d golden hashes", len(specs), len(goldenHashes))
	}
	// Facts follow the spec's bytes: their hash is unchanged too.
	if got, want := HashWith(bottle.RoleBundle, specs["edge/base"], "public=203.0.113.7"), goldenFacts; got != want {
		t.Errorf("bundle hash with facts = %s, want %s", got, want)
	}
}

const goldenFacts = "963a277515b39894a9f1c68e8440b8b9"
