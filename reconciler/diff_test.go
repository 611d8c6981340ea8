package reconciler

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

const inst = "test"

func desiredBottle(name string, edit ...func(*spec.Spec)) *DesiredBottle {
	s := spec.Spec{Guest: "smolvm", Image: "agent:1", Daemons: []string{"egress", "dns"}, Resources: spec.Resources{CPUs: 2, MemoryMiB: 2048}}
	for _, e := range edit {
		e(&s)
	}
	db := &DesiredBottle{Name: name, Spec: s, NetworkKind: "net", BundleKind: "bundle", GuestKind: "smolvm"}
	if s.Network.Subnet != "" {
		db.Subnet = netip.MustParsePrefix(s.Network.Subnet)
	}
	return db
}

// chain returns the resources of a converged bottle db on subnet.
func chain(db *DesiredBottle, subnet string) []bottle.Resource {
	p := netip.MustParsePrefix(subnet)
	mk := func(role bottle.Role, kind, name string) bottle.Resource {
		l := bottle.OwnerLabels(inst, db.Name, role, Hash(role, db.Spec))
		return bottle.Resource{Kind: kind, Role: role, Bottle: db.Name, Instance: inst, Name: name, Hash: l[bottle.LabelHash], HashVersion: bottle.HashVersion, Labels: l, State: bottle.StateRunning}
	}
	n := mk(bottle.RoleNetwork, "net", bottle.Names(db.Name, bottle.RoleNetwork))
	n.Subnet = p
	b := mk(bottle.RoleBundle, "bundle", bottle.Names(db.Name, bottle.RoleBundle))
	b.Addr, b.Health = bottle.BundleAddr(p), bottle.HealthHealthy
	g := mk(bottle.RoleGuest, db.GuestKind, db.guestName())
	g.Labels[bottle.LabelBundleAddr] = bottle.BundleAddr(p).String()
	return []bottle.Resource{n, b, g}
}

func want(ds ...*DesiredBottle) Desired {
	d := Desired{Bottles: map[string]*DesiredBottle{}, Held: map[string]string{}}
	for _, b := range ds {
		d.Bottles[b.Name] = b
	}
	return d
}

func edit(rs []bottle.Resource, role bottle.Role, fn func(*bottle.Resource)) []bottle.Resource {
	out := make([]bottle.Resource, len(rs))
	copy(out, rs)
	for i := range out {
		out[i].Labels = maps.Clone(out[i].Labels)
		if out[i].Role == role {
			fn(&out[i])
		}
	}
	return out
}

func without(rs []bottle.Resource, role bottle.Role) []bottle.Resource {
	var out []bottle.Resource
	for _, r := range rs {
		if r.Role != role {
			out = append(out, r)
		}
	}
	return out
}

func TestDiff(t *testing.T) {
	alice := desiredBottle("alice")
	aliceRes := chain(alice, "10.213.0.8/29")
	tests := []struct {
		name     string
		desired  Desired
		observed []bottle.Resource
		protect  map[string]bool
		max      int
		want     string
	}{
		{
			name:    "empty host creates the chain in order",
			desired: want(desiredBottle("alice", func(s *spec.Spec) { s.Network.Subnet = "10.213.4.0/29" })),
			want: `bottle alice
  + create  network  bottle-alice (network missing) subnet=10.213.4.0/29
  + create  bundle   bottle-alice-bundle (bundle missing) addr=(from the network) allow=0 rule(s) daemons=egress,dns
  + create  guest    bottle-alice (guest missing) addr=(from the network) guest=smolvm image=agent:1 resources=2cpu/2048MiB
Plan: 3 to create, 0 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "converged plans nothing",
			desired:  want(alice),
			observed: aliceRes,
			want:     "Plan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
		{
			name:     "env change recreates only the guest",
			desired:  want(desiredBottle("alice", func(s *spec.Spec) { s.Env = map[string]string{"A": "secret-value"} })),
			observed: aliceRes,
			want: `bottle alice
  - delete  guest    bottle-alice (spec hash changed)
  + create  guest    bottle-alice (spec hash changed) addr=10.213.0.10 env=1 var(s) guest=smolvm image=agent:1 resources=2cpu/2048MiB
Plan: 1 to create, 1 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "pinned subnet change recreates the chain, teardown in reverse",
			desired:  want(desiredBottle("alice", func(s *spec.Spec) { s.Network.Subnet = "10.213.9.0/29" })),
			observed: aliceRes,
			want: `bottle alice
  - delete  guest    bottle-alice (network subnet is 10.213.0.8/29, spec pins 10.213.9.0/29)
  - delete  bundle   bottle-alice-bundle (network subnet is 10.213.0.8/29, spec pins 10.213.9.0/29)
  - delete  network  bottle-alice (network subnet is 10.213.0.8/29, spec pins 10.213.9.0/29)
  + create  network  bottle-alice (network subnet is 10.213.0.8/29, spec pins 10.213.9.0/29) subnet=10.213.9.0/29
  + create  bundle   bottle-alice-bundle (network subnet is 10.213.0.8/29, spec pins 10.213.9.0/29) addr=(from the network) allow=0 rule(s) daemons=egress,dns
  + create  guest    bottle-alice (network subnet is 10.213.0.8/29, spec pins 10.213.9.0/29) addr=(from the network) guest=smolvm image=agent:1 resources=2cpu/2048MiB
Plan: 3 to create, 3 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "removed spec tears down in reverse",
			desired:  want(),
			observed: aliceRes,
			want: `bottle alice
  - delete  guest    bottle-alice (spec file removed)
  - delete  bundle   bottle-alice-bundle (spec file removed)
  - delete  network  bottle-alice (spec file removed)
Plan: 0 to create, 3 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "protected bottle is kept",
			desired:  want(),
			observed: aliceRes,
			protect:  map[string]bool{"alice": true},
			want:     "bottle alice: protected: spec file removed, but the bottle is protected; tear it down with `bottle-reconcile down --force alice`\nPlan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
		{
			name:     "deletion cap holds the whole teardown",
			desired:  want(),
			observed: append(append(chain(desiredBottle("a"), "10.213.0.0/29"), chain(desiredBottle("b"), "10.213.0.8/29")...), chain(desiredBottle("c"), "10.213.0.16/29")...),
			max:      2,
			want: `bottle a: capped: spec file removed, but 3 bottles would be torn down and the cap is 2 per pass; rerun with --allow-mass-delete if that is intended
bottle b: capped: spec file removed, but 3 bottles would be torn down and the cap is 2 per pass; rerun with --allow-mass-delete if that is intended
bottle c: capped: spec file removed, but 3 bottles would be torn down and the cap is 2 per pass; rerun with --allow-mass-delete if that is intended
Plan: 0 to create, 0 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "bundle exited: guest stopped while the bundle is replaced, then started",
			desired:  want(alice),
			observed: edit(aliceRes, bottle.RoleBundle, func(r *bottle.Resource) { r.State, r.Detail, r.Health = bottle.StateStopped, "exited (137)", "" }),
			want: `bottle alice
  . stop    guest    bottle-alice (bundle exited (137); the guest waits for its new bundle)
  - delete  bundle   bottle-alice-bundle (bundle exited (137)) [at once with the stop above]
  + create  bundle   bottle-alice-bundle (bundle exited (137)) addr=10.213.0.10 allow=0 rule(s) daemons=egress,dns [at once with the stop above]
  > start   guest    bottle-alice (bundle replaced)
Plan: 1 to create, 1 to delete, 1 to start, 1 to stop.
`,
		},
		{
			name:     "bundle removed out of band",
			desired:  want(alice),
			observed: without(aliceRes, bottle.RoleBundle),
			want: `bottle alice
  . stop    guest    bottle-alice (bundle missing; the guest waits for its new bundle)
  + create  bundle   bottle-alice-bundle (bundle missing) addr=10.213.0.10 allow=0 rule(s) daemons=egress,dns [at once with the stop above]
  > start   guest    bottle-alice (bundle replaced)
Plan: 1 to create, 0 to delete, 1 to start, 1 to stop.
`,
		},
		{
			name:     "bundle unhealthy",
			desired:  want(alice),
			observed: edit(without(aliceRes, bottle.RoleGuest), bottle.RoleBundle, func(r *bottle.Resource) { r.Health = bottle.HealthUnhealthy }),
			want: `bottle alice
  - delete  bundle   bottle-alice-bundle (bundle unhealthy)
  + create  bundle   bottle-alice-bundle (bundle unhealthy) addr=10.213.0.10 allow=0 rule(s) daemons=egress,dns
  + create  guest    bottle-alice (guest missing) addr=10.213.0.10 guest=smolvm image=agent:1 resources=2cpu/2048MiB
Plan: 2 to create, 1 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "bundle at the wrong address",
			desired:  want(alice),
			observed: edit(aliceRes, bottle.RoleBundle, func(r *bottle.Resource) { r.Addr = netip.MustParseAddr("10.213.0.12") }),
			want: `bottle alice
  . stop    guest    bottle-alice (bundle address is 10.213.0.12, want 10.213.0.10; the guest waits for its new bundle)
  - delete  bundle   bottle-alice-bundle (bundle address is 10.213.0.12, want 10.213.0.10)
  + create  bundle   bottle-alice-bundle (bundle address is 10.213.0.12, want 10.213.0.10) addr=10.213.0.10 allow=0 rule(s) daemons=egress,dns
  > start   guest    bottle-alice (bundle replaced)
Plan: 1 to create, 1 to delete, 1 to start, 1 to stop.
`,
		},
		{
			name:     "starting bundle: wait, don't replace",
			desired:  want(alice),
			observed: edit(without(aliceRes, bottle.RoleGuest), bottle.RoleBundle, func(r *bottle.Resource) { r.Health = bottle.HealthStarting }),
			want:     "bottle alice: waiting: bundle bottle-alice-bundle is starting; the guest follows once it is healthy\nPlan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
		{
			name:     "dead guest is started, not recreated",
			desired:  want(alice),
			observed: edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) { r.State, r.Detail = bottle.StateStopped, "stopped" }),
			want: `bottle alice
  > start   guest    bottle-alice (guest stopped)
Plan: 0 to create, 0 to delete, 1 to start, 0 to stop.
`,
		},
		{
			name:    "guest that no start can help is replaced, not started",
			desired: want(alice),
			observed: edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) {
				r.State, r.Detail, r.Broken = bottle.StateCreated, "created", "never got an address on its bottle network"
			}),
			want: `bottle alice
  - delete  guest    bottle-alice (never got an address on its bottle network)
  + create  guest    bottle-alice (never got an address on its bottle network) addr=10.213.0.10 guest=smolvm image=agent:1 resources=2cpu/2048MiB
Plan: 1 to create, 1 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "guest egress locked elsewhere is recreated",
			desired:  want(alice),
			observed: edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) { r.Labels[bottle.LabelBundleAddr] = "10.213.0.99" }),
			want: `bottle alice
  - delete  guest    bottle-alice (egress is locked to 10.213.0.99, the bundle is at 10.213.0.10)
  + create  guest    bottle-alice (egress is locked to 10.213.0.99, the bundle is at 10.213.0.10) addr=10.213.0.10 guest=smolvm image=agent:1 resources=2cpu/2048MiB
Plan: 1 to create, 1 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "older hash version is adopted, not recreated",
			desired:  want(desiredBottle("alice", func(s *spec.Spec) { s.Image = "agent:2" })),
			observed: edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) { r.HashVersion = "0" }),
			want:     "Plan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
		{
			name: "guest kind changed",
			desired: want(func() *DesiredBottle {
				d := desiredBottle("alice", func(s *spec.Spec) { s.Guest = "docker" })
				d.GuestKind, d.GuestName = "docker-guest", "bottle-alice-guest"
				return d
			}()),
			observed: edit(aliceRes, bottle.RoleBundle, func(r *bottle.Resource) {}),
			// A docker guest's network has no host address, so the whole
			// chain is rebuilt.
			want: `bottle alice
  - delete  guest    bottle-alice (spec.guest is now docker)
  - delete  bundle   bottle-alice-bundle (network spec hash changed)
  - delete  network  bottle-alice (network spec hash changed)
  + create  network  bottle-alice (network spec hash changed) subnet=(allocated)
  + create  bundle   bottle-alice-bundle (network spec hash changed) addr=(from the network) allow=0 rule(s) daemons=egress,dns
  + create  guest    bottle-alice-guest (guest missing) addr=(from the network) guest=docker image=agent:1 resources=2cpu/2048MiB
Plan: 3 to create, 3 to delete, 0 to start, 0 to stop.
`,
		},
		{
			name:     "held bottle is left alone",
			desired:  Desired{Bottles: map[string]*DesiredBottle{}, Held: map[string]string{"alice": "specs/alice.yaml is invalid"}},
			observed: aliceRes,
			want:     "bottle alice: held: specs/alice.yaml is invalid; the bottle is left as it is until that is fixed\nPlan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
		{
			name:     "suspended bottle is left alone, even broken",
			desired:  want(desiredBottle("alice", func(s *spec.Spec) { s.Suspend = true })),
			observed: without(aliceRes, bottle.RoleBundle),
			want:     "bottle alice: suspended: spec.suspend is true; the bottle is left as it is\nPlan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
		{
			name:     "unreadable invalid file blocks every teardown",
			desired:  Desired{Bottles: map[string]*DesiredBottle{}, Held: map[string]string{}, PruneBlocked: "x.yaml is invalid"},
			observed: aliceRes,
			want:     "bottle alice: blocked: spec file removed, but x.yaml is invalid; nothing is torn down until that is fixed\nPlan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
		{
			name:    "another instance's bottle of the same name is a conflict",
			desired: want(alice),
			observed: edit(aliceRes, bottle.RoleNetwork, func(r *bottle.Resource) {
				r.Instance = "other"
			})[:1],
			want: "bottle alice: conflict: network \"bottle-alice\" belongs to reconciler instance \"other\"; rename the bottle or stop managing it there\nPlan: 0 to create, 0 to delete, 0 to start, 0 to stop.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewObserved(inst, tt.observed, nil)
			if tt.protect != nil {
				o.Protected = tt.protect
			}
			max := tt.max
			if max == 0 {
				max = 10
			}
			got := Diff(tt.desired, o, DiffOptions{Instance: inst, MaxDeletes: max}).String()
			if got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
			if again := Diff(tt.desired, NewObserved(inst, tt.observed, o.Protected), DiffOptions{Instance: inst, MaxDeletes: max}).String(); again != got {
				t.Errorf("not deterministic:\n%s\nthen:\n%s", got, again)
			}
			if strings.Contains(got, "secret-value") {
				t.Error("an env value leaked into the plan")
			}
		})
	}
}

func TestDiffRepairsDrift(t *testing.T) {
	alice := desiredBottle("alice")
	obs := edit(chain(alice, "10.213.0.8/29"), bottle.RoleGuest, func(r *bottle.Resource) { r.Drift = "host firewall rules missing" })
	got := Diff(want(alice), NewObserved(inst, obs, nil), DiffOptions{Instance: inst, MaxDeletes: 5}).String()
	wantPlan := `bottle alice
  ~ repair  guest    bottle-alice (host firewall rules missing)
Plan: 0 to create, 0 to delete, 0 to start, 0 to stop, 1 to repair.
`
	if got != wantPlan {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, wantPlan)
	}
}

// TestDiffBundleFacts: a bundle driver's facts (the host's addresses, DNS
// limit flags) are hashed into the bundle's hash, so a change of them
// replaces the bundle alone, with a cause saying so; no facts leave the
// hash as it was.
func TestDiffBundleFacts(t *testing.T) {
	alice := desiredBottle("alice")
	plain := chain(alice, "10.213.0.8/29")
	withFacts := func(f string) []bottle.Resource {
		return edit(plain, bottle.RoleBundle, func(r *bottle.Resource) {
			r.Hash = HashWith(bottle.RoleBundle, alice.Spec, f)
			r.Labels[bottle.LabelHash], r.Labels[bottle.LabelFacts] = r.Hash, FactsDigest(f)
		})
	}
	tests := []struct {
		name     string
		facts    string
		observed []bottle.Resource
		replace  bool
	}{
		{"no facts, made without", "", plain, false},
		{"facts, made without (an upgrade on a host with a public address)", "hosts=203.0.113.9", plain, true},
		{"same facts", "hosts=203.0.113.9", withFacts("hosts=203.0.113.9"), false},
		{"the host's address changed", "hosts=203.0.113.10", withFacts("hosts=203.0.113.9"), true},
		{"the facts went away", "", withFacts("hosts=203.0.113.9"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var facts map[bottle.Role]string
			if tt.facts != "" {
				facts = map[bottle.Role]string{bottle.RoleBundle: tt.facts}
			}
			p := Diff(want(alice), NewObserved(inst, tt.observed, nil), DiffOptions{Instance: inst, MaxDeletes: 10, Facts: facts})
			if !tt.replace {
				if len(p.Ops) != 0 {
					t.Fatalf("plan:\n%s\nwant nothing", p)
				}
				return
			}
			var created *bottle.Want
			for _, op := range p.Ops {
				if op.Role != bottle.RoleBundle {
					// A docker guest is frozen and thawed, a smolvm guest
					// stopped and started: never recreated for the facts.
					if op.Action == ActionCreate || op.Action == ActionDelete {
						t.Errorf("op %s %s %s; want only the bundle replaced", op.Action, op.Role, op.Name)
					}
					continue
				}
				if !strings.Contains(op.Cause, "bundle settings changed") {
					t.Errorf("op %s bundle cause %q, want one saying the bundle settings changed", op.Action, op.Cause)
				}
				if op.Action == ActionCreate {
					created = op.Want
				}
			}
			if created == nil {
				t.Fatalf("plan:\n%s\nwant the bundle replaced", p)
			}
			if h := created.Labels[bottle.LabelHash]; h != HashWith(bottle.RoleBundle, alice.Spec, tt.facts) {
				t.Errorf("new bundle hash %s, want the hash with the facts", h)
			}
			if f := created.Labels[bottle.LabelFacts]; f != FactsDigest(tt.facts) {
				t.Errorf("new bundle facts label %q, want %q", f, FactsDigest(tt.facts))
			}
		})
	}
	if Hash(bottle.RoleBundle, alice.Spec) != HashWith(bottle.RoleBundle, alice.Spec, "") {
		t.Error("empty facts change the hash: an upgrade would replace every bundle")
	}
}

// TestDiffReasons checks the reason each operation carries: code (the drift
// metric, plan -o json) reads it, never the cause's words.
func TestDiffReasons(t *testing.T) {
	alice := desiredBottle("alice")
	aliceRes := chain(alice, "10.213.0.8/29")
	exited := func(r *bottle.Resource) { r.State, r.Detail, r.Health = bottle.StateStopped, "exited (137)", "" }
	tests := []struct {
		name     string
		desired  Desired
		observed []bottle.Resource
		want     []Reason
	}{
		{"new bottle", want(alice), nil, []Reason{ReasonNew, ReasonNew, ReasonNew}},
		{"guest removed out of band", want(alice), without(aliceRes, bottle.RoleGuest), []Reason{ReasonDrift}},
		{"bundle removed out of band: stop, create, start", want(alice), without(aliceRes, bottle.RoleBundle), []Reason{ReasonDrift, ReasonDrift, ReasonDrift}},
		{"bundle exited", want(alice), edit(aliceRes, bottle.RoleBundle, exited), []Reason{ReasonDrift, ReasonDrift, ReasonDrift, ReasonDrift}},
		{"bundle unhealthy", want(alice), edit(aliceRes, bottle.RoleBundle, func(r *bottle.Resource) { r.Health = bottle.HealthUnhealthy }), []Reason{ReasonDrift, ReasonDrift, ReasonDrift, ReasonDrift}},
		{"guest stopped", want(alice), edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) { r.State = bottle.StateStopped }), []Reason{ReasonDrift}},
		{"guest rules lost", want(alice), edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) { r.Drift = "host firewall rules missing" }), []Reason{ReasonDrift}},
		{"guest egress locked elsewhere", want(alice), edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) { r.Labels[bottle.LabelBundleAddr] = "10.213.0.99" }), []Reason{ReasonDrift, ReasonDrift}},
		{"guest half made", want(alice), edit(aliceRes, bottle.RoleGuest, func(r *bottle.Resource) { r.Broken = "never got an address" }), []Reason{ReasonBroken, ReasonBroken}},
		{"guest spec changed", want(desiredBottle("alice", func(s *spec.Spec) { s.Image = "agent:2" })), aliceRes, []Reason{ReasonSpecChanged, ReasonSpecChanged}},
		// The guest's restart follows its bundle's reason: a spec change, not drift.
		{"bundle spec changed", want(desiredBottle("alice", func(s *spec.Spec) { s.Egress.Allow = []string{"example.com"} })), aliceRes,
			[]Reason{ReasonSpecChanged, ReasonSpecChanged, ReasonSpecChanged, ReasonSpecChanged}},
		{"pinned subnet changed", want(desiredBottle("alice", func(s *spec.Spec) { s.Network.Subnet = "10.213.9.0/29" })), aliceRes,
			[]Reason{ReasonSpecChanged, ReasonSpecChanged, ReasonSpecChanged, ReasonSpecChanged, ReasonSpecChanged, ReasonSpecChanged}},
		{"spec removed", want(), aliceRes, []Reason{ReasonSpecRemoved, ReasonSpecRemoved, ReasonSpecRemoved}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(tt.desired, NewObserved(inst, tt.observed, nil), DiffOptions{Instance: inst, MaxDeletes: 10})
			var got []Reason
			for _, op := range p.Ops {
				got = append(got, op.Reason)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("reasons = %q, want %q\n%s", got, tt.want, p)
			}
		})
	}
}

func TestTeardownReason(t *testing.T) {
	o := NewObserved(inst, chain(desiredBottle("alice"), "10.213.0.8/29"), nil)
	for _, op := range Teardown(o, []string{"alice"}, false, false, false).Ops {
		if op.Reason != ReasonDown {
			t.Errorf("%s: reason %q, want %q", op, op.Reason, ReasonDown)
		}
	}
}
