package reconciler

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// TestWhichFieldsReplaceWhichRoles changes one spec field at a time on a
// converged bottle and checks, against expectations written out by hand
// rather than derived from Hash, exactly which roles the plan replaces.
// Dropping a field from a role's hash, or adding one to the wrong role,
// fails a row here.
func TestWhichFieldsReplaceWhichRoles(t *testing.T) {
	base := func(s *spec.Spec) {
		s.Env = map[string]string{"MODE": "one"}
		s.EnvFromHost = []string{"TOKEN_A", "TOKEN_B"}
		s.Egress.Allow = []string{"a.example.com", "b.example.com:443"}
		s.AllowCIDRs = []string{"192.0.2.0/24", "198.51.100.0/24"}
	}
	const subnet = "10.213.0.8/29"
	observed := chain(desiredBottle("alice", base), subnet)
	docker := func(d *DesiredBottle) {
		d.Spec.Guest = spec.GuestDocker
		d.GuestKind, d.GuestName = "docker-guest", "bottle-alice-guest"
	}
	// A bottle made from base with a workspace.
	wsObserved := chain(desiredBottle("alice", func(s *spec.Spec) {
		base(s)
		s.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work"}
	}), subnet)
	dockerObserved := func() []bottle.Resource {
		db := desiredBottle("alice", base)
		docker(db)
		return chain(db, subnet)
	}()

	const (
		N = bottle.RoleNetwork
		B = bottle.RoleBundle
		G = bottle.RoleGuest
	)
	tests := []struct {
		field    string
		edit     func(*DesiredBottle)
		want     []bottle.Role     // the roles deleted and created again, in creation order
		observed []bottle.Resource // what exists: a bottle made from base
	}{
		{"nothing", func(*DesiredBottle) {}, nil, observed},
		{"image", func(d *DesiredBottle) { d.Spec.Image = "agent:2" }, []bottle.Role{G}, observed},
		{"env value", func(d *DesiredBottle) { d.Spec.Env = map[string]string{"MODE": "two"} }, []bottle.Role{G}, observed},
		{"env name added", func(d *DesiredBottle) { d.Spec.Env = map[string]string{"MODE": "one", "X": "1"} }, []bottle.Role{G}, observed},
		{"env removed", func(d *DesiredBottle) { d.Spec.Env = nil }, []bottle.Role{G}, observed},
		{"envFromHost name added", func(d *DesiredBottle) { d.Spec.EnvFromHost = []string{"TOKEN_A", "TOKEN_B", "TOKEN_C"} }, []bottle.Role{G}, observed},
		{"envFromHost reordered", func(d *DesiredBottle) { d.Spec.EnvFromHost = []string{"TOKEN_B", "TOKEN_A"} }, nil, observed},
		{"daemons: dns dropped", func(d *DesiredBottle) { d.Spec.Daemons = []string{"egress"} }, []bottle.Role{B, G}, observed},
		{"daemons: none", func(d *DesiredBottle) { d.Spec.Daemons = []string{} }, []bottle.Role{B, G}, observed},
		{"daemons reordered", func(d *DesiredBottle) { d.Spec.Daemons = []string{"dns", "egress"} }, nil, observed},
		{"egress.allow host added", func(d *DesiredBottle) {
			d.Spec.Egress.Allow = []string{"a.example.com", "b.example.com:443", "c.example.com"}
		}, []bottle.Role{B}, observed},
		{"egress.allow host removed", func(d *DesiredBottle) { d.Spec.Egress.Allow = []string{"a.example.com"} }, []bottle.Role{B}, observed},
		{"egress.allow port changed", func(d *DesiredBottle) { d.Spec.Egress.Allow = []string{"a.example.com", "b.example.com:8443"} }, []bottle.Role{B}, observed},
		{"egress.allow reordered", func(d *DesiredBottle) { d.Spec.Egress.Allow = []string{"b.example.com:443", "a.example.com"} }, nil, observed},
		{"allowCIDRs range added", func(d *DesiredBottle) {
			d.Spec.AllowCIDRs = []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"}
		}, []bottle.Role{G}, observed},
		{"allowCIDRs range removed", func(d *DesiredBottle) { d.Spec.AllowCIDRs = []string{"192.0.2.0/24"} }, []bottle.Role{G}, observed},
		{"allowCIDRs reordered", func(d *DesiredBottle) { d.Spec.AllowCIDRs = []string{"198.51.100.0/24", "192.0.2.0/24"} }, nil, observed},
		{"workspace added", func(d *DesiredBottle) { d.Spec.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work"} }, []bottle.Role{G}, observed},
		{"workspace removed", func(d *DesiredBottle) { d.Spec.Workspace = nil }, []bottle.Role{G}, wsObserved},
		{"workspace same", func(d *DesiredBottle) { d.Spec.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work"} }, nil, wsObserved},
		{"workspace hostPath", func(d *DesiredBottle) { d.Spec.Workspace = &spec.Workspace{HostPath: "/srv/v", GuestPath: "/work"} }, []bottle.Role{G}, wsObserved},
		{"workspace guestPath", func(d *DesiredBottle) { d.Spec.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/src"} }, []bottle.Role{G}, wsObserved},
		{"workspace readOnly", func(d *DesiredBottle) {
			d.Spec.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work", ReadOnly: true}
		}, []bottle.Role{G}, wsObserved},
		{"resources.cpus", func(d *DesiredBottle) { d.Spec.Resources.CPUs = 4 }, []bottle.Role{G}, observed},
		{"resources.memoryMiB", func(d *DesiredBottle) { d.Spec.Resources.MemoryMiB = 4096 }, []bottle.Role{G}, observed},
		{"network.subnet pinned elsewhere", func(d *DesiredBottle) {
			d.Spec.Network.Subnet = "10.213.9.0/29"
			d.Subnet = netip.MustParsePrefix("10.213.9.0/29")
		}, []bottle.Role{N, B, G}, observed},
		{"network.subnet pinned to the one it has", func(d *DesiredBottle) {
			d.Spec.Network.Subnet = subnet
			d.Subnet = netip.MustParsePrefix(subnet)
		}, nil, observed},
		{"guest smolvm to docker", docker, []bottle.Role{N, B, G}, observed},
		// The same rules hold for a docker guest.
		{"docker guest: nothing", docker, nil, dockerObserved},
		{"docker guest: egress.allow", func(d *DesiredBottle) { docker(d); d.Spec.Egress.Allow = []string{"a.example.com"} }, []bottle.Role{B}, dockerObserved},
		{"docker guest: allowCIDRs", func(d *DesiredBottle) { docker(d); d.Spec.AllowCIDRs = nil }, []bottle.Role{G}, dockerObserved},
		{"docker guest: image", func(d *DesiredBottle) { docker(d); d.Spec.Image = "agent:2" }, []bottle.Role{G}, dockerObserved},
		{"docker guest: workspace", func(d *DesiredBottle) {
			docker(d)
			d.Spec.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work", ReadOnly: true}
		}, []bottle.Role{G}, dockerObserved},
		{"suspend", func(d *DesiredBottle) { d.Spec.Suspend = true }, nil, observed},
		{"protect", func(d *DesiredBottle) { d.Spec.Protect = true }, nil, observed},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			db := desiredBottle("alice", base)
			tt.edit(db)
			plan := Diff(want(db), NewObserved(inst, tt.observed, nil), DiffOptions{Instance: inst, MaxDeletes: 5})
			var deleted, created []bottle.Role
			for _, op := range plan.Ops {
				switch op.Action {
				case ActionDelete:
					deleted = append(deleted, op.Role)
				case ActionCreate:
					created = append(created, op.Role)
				}
			}
			// Deletion order is TestDiff's business; here only which roles.
			slices.SortFunc(deleted, func(a, b bottle.Role) int { return slices.Index(bottle.Roles, a) - slices.Index(bottle.Roles, b) })
			if !slices.Equal(deleted, tt.want) {
				t.Errorf("changing %s deletes %v, want %v\n%s", tt.field, deleted, tt.want, plan)
			}
			if !slices.Equal(created, tt.want) {
				t.Errorf("changing %s creates %v, want %v\n%s", tt.field, created, tt.want, plan)
			}
		})
	}
}

// A change that replaces the bundle and the guest takes the guest down
// first: a guest never runs while its bundle is away, also when it is about
// to be replaced itself.
func TestBundleAndGuestReplacedGuestFirst(t *testing.T) {
	const subnet = "10.213.0.8/29"
	observed := chain(desiredBottle("alice", func(*spec.Spec) {}), subnet)
	db := desiredBottle("alice", func(s *spec.Spec) { s.Daemons = []string{"egress"} })
	plan := Diff(want(db), NewObserved(inst, observed, nil), DiffOptions{Instance: inst, MaxDeletes: 5})
	var got []string
	for _, op := range plan.Ops {
		got = append(got, string(op.Action)+" "+string(op.Role))
	}
	want := []string{"delete guest", "delete bundle", "create bundle", "create guest"}
	if !slices.Equal(got, want) {
		t.Errorf("ops %q, want %q\n%s", got, want, plan)
	}
}
