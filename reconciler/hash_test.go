package reconciler

import (
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
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
		{"workspace", func(s *spec.Spec) { s.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work"} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			tt.edit(&s)
			if got := Hash(bottle.RoleGuest, s) != Hash(bottle.RoleGuest, base); got != tt.change {
				t.Errorf("guest hash changed = %v, want %v", got, tt.change)
			}
		})
	}
}

// A bottle without a workspace keeps the guest hash it had before the field
// existed, so an upgrade recreates no guest for it. The value was computed
// by the hash before spec.workspace.
func TestGuestHashWithoutWorkspaceUnchanged(t *testing.T) {
	s := spec.Spec{Guest: spec.GuestSmolvm, Image: "ghcr.io/acme/agent:1", Daemons: []string{spec.DaemonEgress},
		Resources: spec.Resources{CPUs: 2, MemoryMiB: 2048}}
	if got, want := Hash(bottle.RoleGuest, s), "0b81d2dece152059fbdb28d579198641"; got != want {
		t.Errorf("guest hash = %s, want %s", got, want)
	}
}
