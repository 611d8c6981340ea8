package reconciler

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"sync"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	cerrdefs "github.com/containerd/errdefs"
)

// fakeDriver is a stateful, hand-written stand-in for a driver: resources in
// a map, every call counted, and failures injected per action and name.
type fakeDriver struct {
	kind string
	role bottle.Role

	mu        sync.Mutex
	items     map[string]bottle.Resource
	wants     map[string]bottle.Want // what each create received, by name
	calls     []string               // "create bottle-a", "observe", ...
	failOn    map[string]error
	observeFn func() error
	next      netip.Prefix // next subnet handed out by a network fake
	seq       *sequence    // when set, every write call is also logged here
	scopes    []string     // the scope of each Observe ("" for every bottle)
}

// sequence is one log of write calls across drivers, so tests can check the
// order operations of different roles ran in.
type sequence struct {
	mu    sync.Mutex
	calls []string
}

func (s *sequence) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.calls
	s.calls = nil
	return out
}

func newFake(kind string, role bottle.Role) *fakeDriver {
	return &fakeDriver{kind: kind, role: role, items: map[string]bottle.Resource{}, wants: map[string]bottle.Want{}, failOn: map[string]error{}, next: netip.MustParsePrefix("10.213.0.0/29")}
}

func (f *fakeDriver) Kind() string      { return f.kind }
func (f *fakeDriver) Role() bottle.Role { return f.role }

func (f *fakeDriver) record(call string) error {
	f.calls = append(f.calls, call)
	if f.seq != nil && call != "observe" {
		f.seq.mu.Lock()
		f.seq.calls = append(f.seq.calls, f.kind+": "+call)
		f.seq.mu.Unlock()
	}
	if err, ok := f.failOn[call]; ok {
		return err
	}
	return nil
}

func (f *fakeDriver) Observe(ctx context.Context) ([]bottle.Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("observe"); err != nil {
		return nil, err
	}
	// A scoped observation lists one bottle's resources, as Docker's label
	// filter does.
	scope := bottle.ScopeOf(ctx)
	f.scopes = append(f.scopes, scope)
	out := make([]bottle.Resource, 0, len(f.items))
	for _, r := range f.items {
		if scope != "" && r.Bottle != scope {
			continue
		}
		r.Labels = maps.Clone(r.Labels)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeDriver) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("create " + w.Name); err != nil {
		return bottle.Resource{}, err
	}
	if _, ok := f.items[w.Name]; ok {
		return bottle.Resource{}, fmt.Errorf("create %s: %w", w.Name, cerrdefs.ErrConflict)
	}
	f.wants[w.Name] = w
	r := bottle.Resource{
		Kind: f.kind, Role: f.role, Name: w.Name, ID: "id-" + w.Name,
		Bottle: w.Labels[bottle.LabelBottle], Instance: w.Labels[bottle.LabelInstance],
		Hash: w.Labels[bottle.LabelHash], HashVersion: w.Labels[bottle.LabelHashVersion],
		Labels: maps.Clone(w.Labels), State: bottle.StateRunning,
	}
	switch f.role {
	case bottle.RoleNetwork:
		r.Subnet = w.Subnet
		if !r.Subnet.IsValid() {
			r.Subnet = f.next
			f.next = nextBlock(f.next)
		}
	case bottle.RoleBundle:
		r.Addr, r.Health = w.BundleAddr, bottle.HealthHealthy
	}
	f.items[w.Name] = r
	return r, nil
}

func (f *fakeDriver) Delete(ctx context.Context, r bottle.Resource) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("delete " + r.Name); err != nil {
		return err
	}
	delete(f.items, r.Name)
	return nil
}

func (f *fakeDriver) Start(ctx context.Context, r bottle.Resource) error {
	return f.setState(r, "start", bottle.StateRunning)
}

func (f *fakeDriver) Stop(ctx context.Context, r bottle.Resource) error {
	return f.setState(r, "stop", bottle.StateStopped)
}

func (f *fakeDriver) setState(r bottle.Resource, verb string, s bottle.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(verb + " " + r.Name); err != nil {
		return err
	}
	x, ok := f.items[r.Name]
	if !ok {
		return fmt.Errorf("%s %s: %w", verb, r.Name, cerrdefs.ErrNotFound)
	}
	x.State = s
	f.items[r.Name] = x
	return nil
}

// observed returns the scope of each Observe so far, and forgets them.
func (f *fakeDriver) observed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.scopes
	f.scopes = nil
	return out
}

// mutate changes a stored resource, as out-of-band drift would.
func (f *fakeDriver) mutate(name string, fn func(*bottle.Resource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.items[name]
	fn(&r)
	f.items[name] = r
}

// writes returns the calls that changed something, and forgets all calls.
func (f *fakeDriver) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c != "observe" {
			out = append(out, c)
		}
	}
	f.calls = nil
	return out
}

var (
	_ Driver  = (*fakeDriver)(nil)
	_ Starter = (*fakeDriver)(nil)
)

// nextBlock returns the /29 that follows p's.
func nextBlock(p netip.Prefix) netip.Prefix {
	a := p.Masked().Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + 8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 29)
}
