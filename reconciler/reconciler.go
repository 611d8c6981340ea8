package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Observer is the read-only half of a Driver: all that planning needs.
// Planning takes Observers, so a plan cannot change anything by construction.
type Observer interface {
	Kind() string
	Role() bottle.Role
	Observe(ctx context.Context) ([]bottle.Resource, error)
}

// Namer is implemented by guest drivers whose resources are not named
// Names(bottle, RoleGuest).
type Namer interface {
	NameFor(bottle string) string
}

// Config is how one reconciler instance runs.
type Config struct {
	Dir      string       // the spec directory
	Instance string       // the ownership label value of this instance
	StateDir string       // lock and status files, outside Dir
	Pool     netip.Prefix // the range bottle subnets come from
	// AllowSubnetOutsidePool accepts specs that pin a subnet outside Pool.
	AllowSubnetOutsidePool bool
	// MaxDeletes caps the bottles one pass may tear down; negative lifts it.
	MaxDeletes int
	// Concurrency bounds how many bottles are worked on at once.
	Concurrency int
	// AllowEmpty lets a spec directory with no spec files tear down every
	// bottle. Without it an empty directory (a failed checkout, a mount
	// that is not there yet) prunes nothing.
	AllowEmpty bool
	// Getenv reads the host variables a spec's envFromHost names, when a
	// guest is created; nil means os.LookupEnv.
	Getenv func(string) (string, bool)

	specCache *spec.Cache    // set by New: one per reconciler, across its passes
	verdicts  *spec.Verdicts // set by New: across processes, in StateDir
	hashes    *specHashes    // set by New: one per reconciler, across its passes
}

// Reconciler runs passes for one instance.
type Reconciler struct {
	cfg     Config
	network Driver
	bundle  Driver
	guests  map[string]Driver // by spec.guest
	log     logr.Logger
	status  StatusStore
	now     func() time.Time
}

// New returns a reconciler. guests maps each spec.guest value to its driver.
func New(cfg Config, network, bundle Driver, guests map[string]Driver, log logr.Logger) *Reconciler {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	cfg.specCache = spec.NewCache()
	cfg.hashes = &specHashes{}
	if cfg.StateDir != "" {
		cfg.verdicts = spec.OpenVerdicts(filepath.Join(cfg.StateDir, "spec-verdicts.json"))
	}
	return &Reconciler{cfg: cfg, network: network, bundle: bundle, guests: guests, log: log, status: NewStatusStore(cfg.StateDir), now: time.Now}
}

// Status returns the reconciler's status store.
func (r *Reconciler) Status() StatusStore { return r.status }

// Pass is one pass's inputs and outcome.
type Pass struct {
	Time     time.Time
	Specs    *spec.Result
	Desired  Desired
	Observed Observed
	Plan     Plan
	// Results is nil for a plan that was not applied.
	Results  map[string]*BottleResult
	Statuses []Status

	// sched is set by a Watcher before Apply (order, stop, backoff); nil
	// for a --once pass.
	sched *passSchedule
	// prev is the statuses the plan read; Apply records against them
	// rather than reading them again (the instance lock keeps them ours).
	prev []Status
	// Unreadable names the state files the plan could not decode: the pass
	// goes on without them, and Apply rewrites or removes them.
	Unreadable []Unreadable
	// Scope is the one bottle a scoped pass looked at (see Watcher), or ""
	// for a pass over every bottle.
	Scope string
}

// drivers lists every distinct driver, network first.
func (r *Reconciler) drivers() []Driver {
	out := []Driver{r.network, r.bundle}
	seen := map[string]bool{r.network.Kind(): true, r.bundle.Kind(): true}
	keys := make([]string, 0, len(r.guests))
	for k := range r.guests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if d := r.guests[k]; !seen[d.Kind()] {
			seen[d.Kind()] = true
			out = append(out, d)
		}
	}
	return out
}

// Plan loads the specs, observes every driver once and diffs. It changes
// nothing: it only holds Observers.
func (r *Reconciler) Plan(ctx context.Context) (*Pass, error) {
	return r.plan(ctx, nil, "")
}

// errUnscoped says a scoped plan must be made over every bottle instead.
var errUnscoped = errors.New("the bottle has no spec: plan every bottle")

// plan is Plan; exited are the resources, by runtime ID, that events said
// stopped since the last pass (see exits). A scope other than "" plans that
// one bottle alone, from one bottle's observation; a bottle with no spec
// (one whose teardown a pass over everything decides, under its caps) gets
// a pass over every bottle instead.
func (r *Reconciler) plan(ctx context.Context, exited map[string]string, scope string) (*Pass, error) {
	var obs []Observer
	for _, d := range r.drivers() {
		obs = append(obs, d)
	}
	p, err := plan(ctx, r.cfg, obs, r.guests, r.status, r.now(), exited, scope)
	if errors.Is(err, errUnscoped) {
		p, err = plan(ctx, r.cfg, obs, r.guests, r.status, r.now(), exited, "")
	}
	if p != nil {
		for _, u := range p.Unreadable {
			r.log.Info("a state file cannot be read; the pass goes on without it and rewrites it", "file", u.File, "error", u.Err.Error())
		}
	}
	return p, err
}

func plan(ctx context.Context, cfg Config, obs []Observer, guests map[string]Driver, st StatusStore, now time.Time, exited map[string]string, scope string) (*Pass, error) {
	// The runtimes are asked while the files are read: a pass takes as long
	// as the slower of the two, not both.
	type observation struct {
		resources []bottle.Resource
		unseen    map[string]string
		facts     map[bottle.Role]string
		err       error
	}
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	oc := make(chan observation, 1)
	if scope != "" {
		octx = bottle.WithScope(octx, scope)
	}
	go func() {
		// The facts (a netlink dump of the host's addresses) are read
		// beside the lists too.
		var facts map[bottle.Role]string
		var ferr error
		read := make(chan struct{})
		go func() {
			defer close(read)
			facts, ferr = hashFacts(octx, obs)
		}()
		rs, unseen, err := observeAll(octx, obs)
		<-read
		if err == nil {
			err = ferr
		}
		oc <- observation{rs, unseen, facts, err}
	}()
	// The recorded statuses are read beside the specs too.
	type record struct {
		sts []Status
		bad []Unreadable
		err error
	}
	rc := make(chan record, 1)
	go func() {
		sts, bad, err := st.Read()
		rc <- record{sts, bad, err}
	}()
	specs, err := spec.LoadDir(cfg.Dir, spec.Options{Pool: cfg.Pool, AllowSubnetOutsidePool: cfg.AllowSubnetOutsidePool, Cache: cfg.specCache, Verdicts: cfg.verdicts, StateDir: cfg.StateDir})
	rec := <-rc
	prev := rec.sts
	if err == nil {
		err = rec.err
	}
	if err != nil {
		// Never "zero bottles": nothing is planned, so nothing is pruned.
		cancel()
		<-oc
		return nil, err
	}
	o := <-oc
	if o.err != nil {
		return nil, o.err
	}
	resources := o.resources
	markExited(resources, exited)
	p := &Pass{Time: now, Specs: specs, prev: prev, Unreadable: rec.bad, Scope: scope}
	p.Desired = desired(specs, obs, guests, cfg.hashes)
	if scope != "" {
		if p.Desired.Bottles[scope] == nil && p.Desired.Held[scope] == "" {
			return nil, errUnscoped
		}
		p.Desired.Bottles = only(p.Desired.Bottles, scope)
		p.Desired.Held = only(p.Desired.Held, scope)
		// What a driver could not narrow is narrowed here.
		resources = slices.DeleteFunc(resources, func(r bottle.Resource) bool { return r.Bottle != scope })
	}
	p.Observed = NewObserved(cfg.Instance, resources, nil)
	p.Observed.Unobservable = o.unseen
	p.Observed.Protected = protected(prev, p.Observed)
	p.Plan = diffPass(cfg, specs, &p.Desired, p.Observed, o.facts)
	return p, nil
}

// only returns m's entry for key alone, in a new map.
func only[V any](m map[string]V, key string) map[string]V {
	out := map[string]V{}
	if v, ok := m[key]; ok {
		out[key] = v
	}
	return out
}

// diffPass is a pass's decision once specs are loaded and the runtimes
// observed; a review (Review) makes the same one offline, with no facts of
// a host.
func diffPass(cfg Config, specs *spec.Result, d *Desired, o Observed, facts map[bottle.Role]string) Plan {
	if len(specs.Files) == 0 && len(o.Bottles) > 0 && !cfg.AllowEmpty && d.PruneBlocked == "" {
		d.PruneBlocked = "the spec directory " + cfg.Dir + " holds no spec files (pass --allow-empty if every bottle should go)"
	}
	return Diff(*d, o, DiffOptions{Instance: cfg.Instance, MaxDeletes: cfg.MaxDeletes, Facts: facts})
}

// hashFacts asks every observer that has them for its HashFacts, by role.
func hashFacts(ctx context.Context, obs []Observer) (map[bottle.Role]string, error) {
	facts := map[bottle.Role]string{}
	for _, o := range obs {
		hf, ok := o.(HashFacter)
		if !ok {
			continue
		}
		f, err := hf.HashFacts(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the facts %s resources are made from: %w", o.Kind(), err)
		}
		if f != "" {
			facts[o.Role()] = f
		}
	}
	return facts, nil
}

// observeAll calls every observer once, concurrently. Any failure fails the
// whole observation: a partial picture would look like missing resources.
// The one exception is a guest driver that cannot observe at all
// (ErrUnobservable): its kind comes back with why, mapped in the second
// result, and the rest of the observation stands.
func observeAll(ctx context.Context, obs []Observer) ([]bottle.Resource, map[string]string, error) {
	ctx = bottle.WithShared(ctx)
	out := make([][]bottle.Resource, len(obs))
	errs := make([]error, len(obs))
	unseen := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, o := range obs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := o.Observe(ctx)
			switch {
			case err != nil && errors.Is(err, bottle.ErrUnobservable) && o.Role() == bottle.RoleGuest:
				mu.Lock()
				unseen[o.Kind()] = err.Error()
				mu.Unlock()
				return
			case err != nil:
				errs[i] = fmt.Errorf("observe %s: %w", o.Kind(), err)
			}
			for j := range rs {
				if rs[j].Kind == "" {
					rs[j].Kind = o.Kind()
				}
			}
			out[i] = rs
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var all []bottle.Resource
	for _, rs := range out {
		all = append(all, rs...)
	}
	return all, unseen, nil
}

// desired turns the valid specs into the bottles a pass wants. hashes, when
// set, fills in their role hashes from what earlier passes computed.
func desired(specs *spec.Result, obs []Observer, guests map[string]Driver, hashes *specHashes) Desired {
	d := Desired{Bottles: map[string]*DesiredBottle{}, Held: map[string]string{}}
	var known map[*spec.Bottle]roleHashes
	if hashes != nil {
		known = hashes.of(specs.Bottles)
	}
	for n, why := range specs.Held {
		d.Held[n] = why
	}
	if len(specs.Unattributed) > 0 {
		d.PruneBlocked = fmt.Sprintf("%s is invalid and its bottle name cannot be read", strings.Join(specs.Unattributed, ", "))
	}
	kindOf := map[bottle.Role]string{}
	for _, o := range obs {
		if _, set := kindOf[o.Role()]; !set {
			kindOf[o.Role()] = o.Kind()
		}
	}
	for _, b := range specs.Bottles {
		g, ok := guests[b.Spec.Guest]
		if !ok {
			d.Held[b.Metadata.Name] = fmt.Sprintf("no driver for guest %q on this host", b.Spec.Guest)
			continue
		}
		db := &DesiredBottle{
			Name: b.Metadata.Name, Source: b.Source, Spec: b.Spec,
			NetworkKind: kindOf[bottle.RoleNetwork], BundleKind: kindOf[bottle.RoleBundle], GuestKind: g.Kind(),
			hashes: known[b],
		}
		if n, ok := g.(Namer); ok {
			db.GuestName = n.NameFor(db.Name)
		}
		if b.Spec.Network.Subnet != "" {
			db.Subnet, _ = netip.ParsePrefix(b.Spec.Network.Subnet) // validated by the loader
		}
		d.Bottles[db.Name] = db
	}
	return d
}

// protected decides which bottles are protected: the last recorded spec says
// so, or, for a bottle with no record, the label on its resources does.
func protected(prev []Status, o Observed) map[string]bool {
	out := map[string]bool{}
	recorded := map[string]bool{}
	for _, s := range prev {
		recorded[s.Bottle] = true
		if s.Protect {
			out[s.Bottle] = true
		}
	}
	for name, b := range o.Bottles {
		if recorded[name] {
			continue
		}
		for _, r := range b.Resources {
			if r.Labels[bottle.LabelProtect] == "true" {
				out[name] = true
			}
		}
	}
	return out
}

// Reconcile runs one pass: plan, apply, record status.
func (r *Reconciler) Reconcile(ctx context.Context) (*Pass, error) {
	p, err := r.Plan(ctx)
	if err != nil {
		return nil, err
	}
	return r.Apply(ctx, p)
}

// Apply carries out a pass's plan and records every bottle's status.
func (r *Reconciler) Apply(ctx context.Context, p *Pass) (*Pass, error) {
	byKind := map[string]Driver{}
	for _, d := range r.drivers() {
		byKind[d.Kind()] = d
	}
	ex := &Executor{Drivers: byKind, Concurrency: r.cfg.Concurrency, Log: r.log, Getenv: r.cfg.Getenv}
	if p.sched != nil {
		ex.Order, ex.Stop = p.sched.order, p.sched.stop
	}
	p.Results = ex.Apply(ctx, p.Plan)
	prev := p.prev
	if prev == nil {
		var err error
		if prev, err = r.status.All(); err != nil {
			return p, err
		}
	}
	now := r.now()
	p.Statuses = statuses(p, prev, now)
	if p.Scope != "" {
		// The other bottles stand as last recorded: this pass did not look.
		for _, st := range prev {
			if st.Bottle != p.Scope {
				p.Statuses = append(p.Statuses, st)
			}
		}
		sort.Slice(p.Statuses, func(i, j int) bool { return p.Statuses[i].Bottle < p.Statuses[j].Bottle })
	}
	before := make(map[string]Status, len(prev))
	for _, st := range prev {
		before[st.Bottle] = st
	}
	var errs []error
	for _, st := range p.Statuses {
		if old, ok := before[st.Bottle]; ok && sameStatus(old, st) {
			continue
		}
		errs = append(errs, r.status.Write(st))
	}
	for _, name := range gone(p, prev) {
		errs = append(errs, r.status.Remove(name))
	}
	if p.Scope != "" {
		// Only a pass that looked at every bottle may say so (pass.json)
		// or judge a status file no bottle has.
		return p, errors.Join(errs...)
	}
	recorded := make(map[string]bool, len(p.Statuses))
	for _, st := range p.Statuses {
		recorded[st.Bottle+".json"] = true
	}
	for _, u := range p.Unreadable {
		if !recorded[filepath.Base(u.File)] {
			errs = append(errs, r.status.RemoveUnreadable(u))
		}
	}
	errs = append(errs, r.status.WritePassTime(now), r.status.WriteRuntimes(runtimes(ctx, r.drivers())))
	if err := r.cfg.verdicts.Save(); err != nil {
		// Only the next process's speed depends on it.
		r.log.V(1).Info("cannot save spec verdicts", "error", err.Error())
	}
	if len(p.Statuses) == 0 && len(p.Results) > 0 {
		// This pass removed the instance's last bottle.
		errs = append(errs, r.cleanup(ctx))
	}
	return p, errors.Join(errs...)
}

// cleanup removes the instance's own resources, once it has no bottles.
func (r *Reconciler) cleanup(ctx context.Context) error {
	var errs []error
	for _, d := range r.drivers() {
		if c, ok := d.(Cleaner); ok {
			if err := c.Cleanup(ctx, r.cfg.Instance); err != nil {
				errs = append(errs, fmt.Errorf("clean up %s: %w", d.Kind(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Converged reports whether every bottle reached its desired state.
func (p *Pass) Converged() bool { return len(p.Failures()) == 0 }

// Failures lists, one line each, every bottle that did not converge and why.
func (p *Pass) Failures() []string {
	var out []string
	for _, pr := range p.Specs.Problems {
		out = append(out, pr.String())
	}
	for _, n := range p.Plan.Notes {
		if n.Kind.Settled() {
			continue
		}
		out = append(out, fmt.Sprintf("bottle %s: %s: %s", n.Bottle, n.Kind, n.Message))
	}
	names := make([]string, 0, len(p.Results))
	for n := range p.Results {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if res := p.Results[n]; res.Err != nil {
			out = append(out, fmt.Sprintf("bottle %s: %s %s %s (%s): %v", n, res.Failed.Action, res.Failed.Role, res.Failed.Name, res.Failed.Cause, res.Err))
		}
	}
	return out
}
