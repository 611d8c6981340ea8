package reconciler

import (
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// A guest is recreated when its hash changes; these edits must not, or
// must, recreate it.
func TestGuestHash(t *testing.T) {
	base := spec.Spec{Guest: spec.GuestSmolvm, Image: "ghcr.io/acme/agent:1", PullPolicy: spec.PullMissing,
		Daemons: []string{spec.DaemonEgress}, Resources: spec.Resources{CPUs: 2, MemoryMiB: 2048}}
	tests := []struct {
		name   string
		edit   func(*spec.Spec)
		change bool
	}{
		{"pullPolicy always", func(s *spec.Spec) { s.PullPolicy = spec.PullAlways }, false},
		{"pullPolicy never", func(s *spec.Spec) { s.PullPolicy = spec.PullNever }, false},
		{"suspend", func(s *spec.Spec) { s.Suspend = true }, false},
		{"image", func(s *spec.Spec) { s.Image = "ghcr.io/acme/agent:2" }, true},
		{"cpus", func(s *spec.Spec) { s.Resources.CPUs = 4 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			tt.edit(&s)
			if got := Hash(RoleGuest, s) != Hash(RoleGuest, base); got != tt.change {
				t.Errorf("guest hash changed = %v, want %v", got, tt.change)
			}
		})
	}
}
