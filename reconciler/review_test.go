package reconciler

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// firstFree allocates as the fakes do on an empty host: the first /29 of
// the default pool that nothing pinned takes.
func firstFree(taken []netip.Prefix) (netip.Prefix, error) {
	a := spec.DefaultPool.Addr()
next:
	for {
		cand := netip.PrefixFrom(a, 29)
		for _, t := range taken {
			if t.Overlaps(cand) {
				a = nextBlock(cand).Addr()
				continue next
			}
		}
		return cand, nil
	}
}

// TestReviewAgreesWithAPass converges a host (fake drivers) on base, puts
// head in place, and checks that the offline review plans exactly what the
// real pass plans, operation for operation and note for note.
func TestReviewAgreesWithAPass(t *testing.T) {
	const pinnedB = "network: {subnet: 10.213.9.0/29}"
	bad := "apiVersion: bottle-reconcile/v1alpha1\nkind: Bottle\nmetadata: {name: a}\nspec:\n  image: agent:1\n  cpus: 2\n"
	for _, tc := range []struct {
		name       string
		base, head map[string]string // file -> body; b.yaml is added to both
		wantOps    bool
	}{
		{"no change", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a")}, false},
		{"image", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": strings.Replace(specFor("a"), "agent:1", "agent:2", 1)}, true},
		{"env", map[string]string{"a.yaml": specFor("a", "env: {X: one}")}, map[string]string{"a.yaml": specFor("a", "env: {X: two}")}, true},
		{"envFromHost", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "envFromHost: [TOKEN]")}, true},
		{"resources", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "resources: {cpus: 4}")}, true},
		{"allowCIDRs", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "allowCIDRs: [198.51.100.0/24]")}, true},
		{"egress.allow", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "egress: {allow: [example.com]}")}, true},
		{"daemons", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "daemons: [egress]")}, true},
		{"daemons reordered", map[string]string{"a.yaml": specFor("a", "daemons: [egress, dns]")}, map[string]string{"a.yaml": specFor("a", "daemons: [dns, egress]")}, false},
		{"guest kind", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "guest: docker")}, true},
		{"subnet pinned", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "network: {subnet: 10.213.4.0/29}")}, true},
		{"subnet moved", map[string]string{"a.yaml": specFor("a", "network: {subnet: 10.213.4.0/29}")}, map[string]string{"a.yaml": specFor("a", "network: {subnet: 10.213.5.0/29}")}, true},
		{"pullPolicy", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "pullPolicy: always")}, false},
		{"suspend", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "suspend: true", "env: {X: one}")}, false},
		{"protect", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a", "protect: true")}, false},
		{"new bottle", map[string]string{}, map[string]string{"a.yaml": specFor("a")}, true},
		{"file removed", map[string]string{"a.yaml": specFor("a")}, map[string]string{}, true},
		{"protected file removed", map[string]string{"a.yaml": specFor("a", "protect: true")}, map[string]string{}, false},
		{"renamed file", map[string]string{"a.yaml": specFor("a")}, map[string]string{"x.yaml": specFor("a")}, false},
		{"invalid head", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": bad}, false},
		{"unreadable name", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": "{"}, false},
		{"claimed twice", map[string]string{"a.yaml": specFor("a")}, map[string]string{"a.yaml": specFor("a"), "a2.yaml": specFor("a")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net, bun := newFake("net", bottle.RoleNetwork), newFake("bundle", bottle.RoleBundle)
			vm, dg := newFake("smolvm", bottle.RoleGuest), newFake("docker-guest", bottle.RoleGuest)
			host, baseDir := t.TempDir(), t.TempDir()
			cfg := Config{Dir: host, Instance: "i1", StateDir: t.TempDir(), MaxDeletes: 3, Concurrency: 1}
			r := New(cfg, net, bun, map[string]Driver{"smolvm": vm, "docker": dg}, testr.New(t))
			put := func(dir string, files map[string]string) {
				t.Helper()
				old, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
				for _, f := range old {
					os.Remove(f)
				}
				files["b.yaml"] = specFor("b", pinnedB)
				for n, body := range files {
					if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			put(host, tc.base)
			put(baseDir, tc.base)
			if p, err := r.Reconcile(context.Background()); err != nil || !p.Converged() {
				t.Fatalf("base pass: %v %v", err, p.Failures())
			}
			put(host, tc.head)
			real, err := r.Plan(context.Background())
			if err != nil {
				t.Fatal(err)
			}

			base, err := spec.LoadDir(baseDir, spec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			head, err := spec.LoadDir(host, spec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			layout := HostLayout{NetworkKind: "net", BundleKind: "bundle", Allocate: firstFree,
				Guests: map[string]GuestLayout{"smolvm": {Kind: "smolvm"}, "docker": {Kind: "docker-guest"}}}
			got, err := Review(base, head, layout, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(strip(got.Plan), strip(real.Plan)) {
				t.Fatalf("review disagrees with the pass\nreview:\n%s\npass:\n%s", got.Plan, real.Plan)
			}
			if tc.wantOps == real.Plan.Empty() {
				t.Fatalf("the pass plans %d ops, want ops: %v\n%s", len(real.Plan.Ops), tc.wantOps, real.Plan)
			}
		})
	}
}

// strip keeps what a plan says, not the pointers it carries.
func strip(p Plan) Plan {
	out := Plan{Notes: p.Notes}
	for _, op := range p.Ops {
		op.Target, op.Want = nil, nil
		out.Ops = append(out.Ops, op)
	}
	return out
}
