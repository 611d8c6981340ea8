package review

import (
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func TestFields(t *testing.T) {
	base := spec.Spec{Guest: "smolvm", Image: "a:1", Env: map[string]string{"K": "secret1"}, Daemons: []string{"egress"}, Resources: spec.Resources{CPUs: 2, MemoryMiB: 2048}}
	for _, tc := range []struct {
		name string
		edit func(*spec.Spec)
		want string
	}{
		{"same", func(*spec.Spec) {}, ""},
		{"image", func(s *spec.Spec) { s.Image = "a:2" }, "spec.image"},
		{"env value", func(s *spec.Spec) { s.Env = map[string]string{"K": "secret2"} }, "spec.env"},
		{"env key", func(s *spec.Spec) { s.Env = map[string]string{"OTHER": "secret1"} }, "spec.env"},
		{"nested", func(s *spec.Spec) { s.Resources.CPUs = 4; s.Network.Subnet = "10.0.0.0/29" }, "spec.network.subnet,spec.resources.cpus"},
		{"list", func(s *spec.Spec) { s.Egress.Allow = []string{"x.com"} }, "spec.egress.allow"},
		{"flags", func(s *spec.Spec) { s.Suspend, s.Protect = true, true }, "spec.protect,spec.suspend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := base
			head.Env = map[string]string{"K": "secret1"}
			tc.edit(&head)
			got := strings.Join(Fields(base, head), ",")
			if got != tc.want {
				t.Fatalf("Fields = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "secret") || strings.Contains(got, "OTHER") {
				t.Fatalf("an env key or value leaked: %s", got)
			}
		})
	}
}
