package reconciler

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// DiffOptions are the knobs of Diff. They come from flags, never from specs.
type DiffOptions struct {
	Instance string
	// MaxDeletes caps how many bottles one pass may tear down because their
	// spec is gone; a larger teardown is held whole until a flag lifts the
	// cap. Negative means no cap.
	MaxDeletes int
	// Facts are what each role's driver makes its resources from beside
	// the spec (HashFacter), hashed with it.
	Facts map[bottle.Role]string
}

// Diff compares what the specs ask for with what exists and returns the
// operations that converge one to the other, each with its cause. It is pure
// and deterministic: no I/O, no clock, and the same input always gives the
// same plan.
func Diff(d Desired, o Observed, opts DiffOptions) Plan {
	p := &planner{opts: opts, others: map[string]bottle.Resource{}, step: map[string]int{}}
	for _, r := range o.Others {
		p.others[string(r.Role)+"/"+r.Name] = r
	}
	names := map[string]bool{}
	for n := range d.Bottles {
		names[n] = true
	}
	for n := range d.Held {
		names[n] = true
	}
	for n := range o.Bottles {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	var gone []*ObservedBottle
	for _, n := range sorted {
		db, ob := d.Bottles[n], o.Bottles[n]
		var unseen string
		if db == nil {
			unseen = o.unseenGuest(ob)
		}
		switch {
		case d.Held[n] != "":
			p.note(n, NoteHeld, d.Held[n]+"; the bottle is left as it is until that is fixed")
		case db != nil && db.Spec.Suspend:
			p.note(n, NoteSuspended, "spec.suspend is true; the bottle is left as it is")
		case db != nil && o.Unobservable[db.GuestKind] != "":
			p.note(n, NoteUnobservable, fmt.Sprintf("its %s guest cannot be observed (%s); the bottle is left as it is until it can", db.GuestKind, o.Unobservable[db.GuestKind]))
		case unseen != "":
			p.note(n, NoteUnobservable, "spec file removed, but "+unseen+"; nothing is torn down until it can be observed")
		case db != nil:
			p.converge(db, ob)
		case ob != nil && len(ob.Resources) > 0:
			gone = append(gone, ob)
		}
	}
	p.teardown(gone, d.PruneBlocked, o.Protected)
	return Plan{Ops: p.ops, Notes: p.notes}
}

type planner struct {
	opts   DiffOptions
	others map[string]bottle.Resource // other instances' resources by role/name
	ops    []Op
	notes  []Note
	step   map[string]int
}

func (p *planner) note(bottle string, kind NoteKind, msg string) {
	p.notes = append(p.notes, Note{Bottle: bottle, Kind: kind, Message: msg})
}

func (p *planner) add(op Op) {
	p.step[op.Bottle]++
	op.Step = p.step[op.Bottle]
	p.ops = append(p.ops, op)
}

func (p *planner) act(a Action, r bottle.Resource, cause string, reason Reason) {
	rr := r
	p.add(Op{Bottle: r.Bottle, Action: a, Role: r.Role, Kind: r.Kind, Name: r.Name, Cause: cause, Reason: reason, Target: &rr})
}

// teardown removes bottles whose spec is gone, guest first, unless pruning
// is blocked, the bottle is protected, or the pass would remove too many.
func (p *planner) teardown(gone []*ObservedBottle, blocked string, protected map[string]bool) {
	var doomed []*ObservedBottle
	for _, ob := range gone {
		switch {
		case blocked != "":
			p.note(ob.Name, NoteBlocked, "spec file removed, but "+blocked+"; nothing is torn down until that is fixed")
		case protected[ob.Name]:
			p.note(ob.Name, NoteProtected, "spec file removed, but the bottle is protected; tear it down with `bottle-reconcile down --force "+ob.Name+"`")
		default:
			doomed = append(doomed, ob)
		}
	}
	if p.opts.MaxDeletes >= 0 && len(doomed) > p.opts.MaxDeletes {
		for _, ob := range doomed {
			p.note(ob.Name, NoteCapped, fmt.Sprintf("spec file removed, but %d bottles would be torn down and the cap is %d per pass; rerun with --allow-mass-delete if that is intended", len(doomed), p.opts.MaxDeletes))
		}
		return
	}
	for _, ob := range doomed {
		p.removeAll(ob, "spec file removed", ReasonSpecRemoved)
	}
}

// removeAll deletes every resource of a bottle in reverse creation order.
func (p *planner) removeAll(ob *ObservedBottle, cause string, reason Reason) {
	for i := len(bottle.Roles) - 1; i >= 0; i-- {
		for _, r := range ob.Of(bottle.Roles[i]) {
			p.act(ActionDelete, r, cause, reason)
		}
	}
}

// converge plans one desired bottle: the chain network → bundle → guest is
// walked in order, and the first link that is wrong decides what follows.
func (p *planner) converge(db *DesiredBottle, ob *ObservedBottle) {
	if ob == nil {
		ob = &ObservedBottle{Name: db.Name}
	}
	if c := p.conflict(db); c != "" {
		p.note(db.Name, NoteConflict, c)
		return
	}
	// A resource missing from a bottle that has others was lost, not yet made.
	missing := ReasonNew
	if len(ob.Resources) > 0 {
		missing = ReasonDrift
	}
	netName := bottle.Names(db.Name, bottle.RoleNetwork)
	net, strayNets := pick(ob.Of(bottle.RoleNetwork), func(r bottle.Resource) bool { return r.Name == netName })
	bun, strayBuns := pick(ob.Of(bottle.RoleBundle), func(r bottle.Resource) bool { return r.Name == bottle.Names(db.Name, bottle.RoleBundle) })
	guest, strayGuests := pick(ob.Of(bottle.RoleGuest), func(r bottle.Resource) bool { return r.Kind == db.GuestKind && r.Name == db.guestName() })

	// Strays are ours but not what this spec describes (e.g. the guest of a
	// kind the spec no longer asks for): removed first, guest side first.
	for _, r := range strayGuests {
		p.act(ActionDelete, r, "spec.guest is now "+db.Spec.Guest, ReasonSpecChanged)
	}

	if why, reason := networkDrift(db, net, missing); why != "" {
		// The whole chain hangs off the network: rebuild it in order.
		cause := "network " + why
		if guest != nil {
			p.act(ActionDelete, *guest, cause, reason)
		}
		for _, r := range append(strayBuns, list(bun)...) {
			p.act(ActionDelete, r, cause, reason)
		}
		for _, r := range append(strayNets, list(net)...) {
			p.act(ActionDelete, r, cause, reason)
		}
		p.create(db, bottle.RoleNetwork, cause, reason, netip.Prefix{})
		if bun == nil {
			p.create(db, bottle.RoleBundle, "bundle missing", missing, netip.Prefix{})
		} else {
			p.create(db, bottle.RoleBundle, cause, reason, netip.Prefix{})
		}
		if guest == nil {
			p.create(db, bottle.RoleGuest, "guest missing", missing, netip.Prefix{})
		} else {
			p.create(db, bottle.RoleGuest, cause, reason, netip.Prefix{})
		}
		return
	}
	for _, r := range strayNets {
		p.act(ActionDelete, r, "unexpected network for this bottle", ReasonBroken)
	}
	subnet := net.Subnet
	addr := bottle.BundleAddr(subnet)

	guestWhy, guestReason := guestDrift(db, guest, addr)
	bunWhy, bunReason, waiting := bundleDrift(db, bun, addr, missing, p.opts.Facts[bottle.RoleBundle])
	if bunWhy == "" && len(strayBuns) > 0 {
		bunWhy, bunReason = "has an unexpected twin", ReasonBroken
	}
	if bunWhy != "" {
		// Free the pinned address before the new bundle starts, and keep the
		// guest stopped while its bundle is away, so it never runs without one.
		// A guest that is replaced too goes first, for the same reason.
		freeze := -1 // the index of a freeze that runs beside the replacement
		if guest != nil && guestWhy == "" && guest.State == bottle.StateRunning {
			p.act(ActionStop, *guest, "bundle "+bunWhy+"; the guest waits for its new bundle", bunReason)
			if (bun == nil || bun.State != bottle.StateRunning) && len(strayBuns) == 0 {
				// No bundle serves the guest already, so freezing it first
				// would keep it from nothing: the freeze runs beside the
				// removal and the creation, and a heal is that much sooner.
				freeze = len(p.ops) - 1
			}
		}
		if guest != nil && guestWhy != "" {
			p.act(ActionDelete, *guest, guestWhy, guestReason)
		}
		for _, r := range append(strayBuns, list(bun)...) {
			p.act(ActionDelete, r, "bundle "+bunWhy, bunReason)
		}
		p.create(db, bottle.RoleBundle, "bundle "+bunWhy, bunReason, subnet)
		if freeze >= 0 {
			p.ops[freeze].Through = p.step[db.Name]
		}
		switch {
		case guest == nil:
			p.create(db, bottle.RoleGuest, "guest missing", missing, subnet)
		case guestWhy != "":
			p.create(db, bottle.RoleGuest, guestWhy, guestReason, subnet)
		default:
			p.act(ActionStart, *guest, "bundle replaced", bunReason)
		}
		return
	}
	if waiting {
		p.note(db.Name, NoteWaiting, "bundle "+bun.Name+" is starting; the guest follows once it is healthy")
		return
	}
	switch {
	case guest == nil:
		p.create(db, bottle.RoleGuest, "guest missing", missing, subnet)
	case guestWhy != "":
		p.act(ActionDelete, *guest, guestWhy, guestReason)
		p.create(db, bottle.RoleGuest, guestWhy, guestReason, subnet)
	case guest.State != bottle.StateRunning:
		p.act(ActionStart, *guest, "guest "+stateCause(*guest), ReasonDrift)
	}
	if guest != nil && guestWhy == "" && guest.Drift != "" {
		p.act(ActionRepair, *guest, guest.Drift, ReasonDrift)
	}
}

// conflict reports a resource this bottle needs whose name another instance
// already uses: creating it would fail, and it is not ours to remove.
func (p *planner) conflict(db *DesiredBottle) string {
	for _, k := range []string{
		string(bottle.RoleNetwork) + "/" + bottle.Names(db.Name, bottle.RoleNetwork),
		string(bottle.RoleBundle) + "/" + bottle.Names(db.Name, bottle.RoleBundle),
		string(bottle.RoleGuest) + "/" + db.guestName(),
	} {
		if r, ok := p.others[k]; ok {
			return fmt.Sprintf("%s %q belongs to reconciler instance %q; rename the bottle or stop managing it there", r.Role, r.Name, r.Instance)
		}
	}
	return ""
}

func (p *planner) create(db *DesiredBottle, role bottle.Role, cause string, reason Reason, subnet netip.Prefix) {
	w := &bottle.Want{
		Bottle:  db.Name,
		Role:    role,
		Network: bottle.Names(db.Name, bottle.RoleNetwork),
	}
	inputs(w, db.Spec)
	w.Labels = bottle.OwnerLabels(p.opts.Instance, db.Name, role, HashWant(*w, p.opts.Facts[role]))
	if role != bottle.RoleGuest && db.GuestKind != "" {
		w.Labels[bottle.LabelGuestKind] = db.GuestKind
	}
	if db.Spec.Protect {
		w.Labels[bottle.LabelProtect] = "true"
	}
	if f := FactsDigest(p.opts.Facts[role]); f != "" {
		w.Labels[bottle.LabelFacts] = f
	}
	kind := ""
	d := map[string]string{}
	switch role {
	case bottle.RoleNetwork:
		w.Name = bottle.Names(db.Name, bottle.RoleNetwork)
		w.Subnet = db.Subnet
		kind = db.NetworkKind
		d["subnet"] = "(allocated)"
		if db.Subnet.IsValid() {
			d["subnet"] = db.Subnet.String()
		}
	case bottle.RoleBundle:
		w.Name = bottle.Names(db.Name, bottle.RoleBundle)
		kind = db.BundleKind
		d["daemons"] = strings.Join(w.Bundle.Daemons, ",")
		if len(w.Bundle.Daemons) == 0 {
			d["daemons"] = "none"
		}
		d["allow"] = strconv.Itoa(len(w.Bundle.Allow)) + " rule(s)"
	case bottle.RoleGuest:
		w.Name = db.guestName()
		kind = db.GuestKind
		g := w.Guest
		d["image"] = g.Image
		d["guest"] = g.Kind
		d["resources"] = fmt.Sprintf("%dcpu/%dMiB", g.CPUs, g.MemoryMiB)
		if n := len(g.Env); n > 0 {
			d["env"] = strconv.Itoa(n) + " var(s)" // names and values stay out of plans
		}
		if len(g.AllowCIDRs) > 0 {
			d["allowCIDRs"] = strings.Join(g.AllowCIDRs, ",")
		}
	}
	if subnet.IsValid() {
		w.Fill(subnet)
	}
	if role != bottle.RoleNetwork {
		d["addr"] = "(from the network)"
		if w.BundleAddr.IsValid() {
			d["addr"] = w.BundleAddr.String()
		}
	}
	p.add(Op{Bottle: db.Name, Action: ActionCreate, Role: role, Kind: kind, Name: w.Name, Cause: cause, Reason: reason, Details: d, Want: w})
}

// networkDrift says why the bottle's network must be (re)created, or "";
// missing is the reason when there is none.
func networkDrift(db *DesiredBottle, net *bottle.Resource, missing Reason) (string, Reason) {
	switch {
	case net == nil:
		return "missing", missing
	case hashDrift(*net, db.hash(bottle.RoleNetwork)):
		return "spec hash changed", ReasonSpecChanged
	case db.Subnet.IsValid() && net.Subnet != db.Subnet:
		return fmt.Sprintf("subnet is %s, spec pins %s", net.Subnet, db.Subnet), ReasonSpecChanged
	case !net.Subnet.IsValid():
		return "has no IPv4 subnet", ReasonBroken
	}
	return "", ""
}

// bundleDrift says why the bundle must be replaced, or "", and whether it is
// still starting (neither healthy nor failed yet); missing is the reason
// when there is none.
func bundleDrift(db *DesiredBottle, b *bottle.Resource, addr netip.Addr, missing Reason, facts string) (string, Reason, bool) {
	switch {
	case b == nil:
		return "missing", missing, false
	case hashDrift(*b, bundleHash(db, facts)):
		if b.Labels[bottle.LabelFacts] != FactsDigest(facts) {
			return "bundle settings changed (the host's public addresses or the DNS limit flags)", ReasonSpecChanged, false
		}
		return "spec hash changed", ReasonSpecChanged, false
	case b.Addr != addr:
		return fmt.Sprintf("address is %s, want %s", orNone(b.Addr), addr), ReasonDrift, false
	case b.State != bottle.StateRunning:
		return stateCause(*b), ReasonDrift, false
	case b.Health == bottle.HealthUnhealthy:
		return "unhealthy", ReasonDrift, false
	case b.Health == bottle.HealthStarting:
		return "", "", true
	}
	return "", "", false
}

// guestDrift says why the guest must be recreated, or "".
func guestDrift(db *DesiredBottle, g *bottle.Resource, addr netip.Addr) (string, Reason) {
	switch {
	case g == nil:
		return "", ""
	case hashDrift(*g, db.hash(bottle.RoleGuest)):
		return "spec hash changed", ReasonSpecChanged
	case g.Broken != "":
		return g.Broken, ReasonBroken
	case g.Labels[bottle.LabelBundleAddr] != addr.String():
		return fmt.Sprintf("egress is locked to %s, the bundle is at %s", orNone(g.Labels[bottle.LabelBundleAddr]), addr), ReasonDrift
	}
	return "", ""
}

// bundleHash is HashWith(bottle.RoleBundle, db.Spec, facts).
func bundleHash(db *DesiredBottle, facts string) string {
	if facts == "" {
		return db.hash(bottle.RoleBundle)
	}
	return HashWith(bottle.RoleBundle, db.Spec, facts)
}

func hashDrift(r bottle.Resource, want string) bool {
	// A resource hashed by another version of the hash function is adopted
	// as it is: upgrading the tool must not recreate every bottle.
	return r.HashVersion == bottle.HashVersion && r.Hash != want
}

func stateCause(r bottle.Resource) string {
	switch r.State {
	case bottle.StateCreated:
		return "never started"
	case bottle.StateStopped:
		if r.Detail != "" {
			return r.Detail
		}
		return "stopped"
	}
	return "state " + orNone(string(r.State))
}

// pick returns the first resource matching ok, and the rest.
func pick(rs []bottle.Resource, ok func(bottle.Resource) bool) (*bottle.Resource, []bottle.Resource) {
	var found *bottle.Resource
	var rest []bottle.Resource
	for i := range rs {
		if found == nil && ok(rs[i]) {
			found = &rs[i]
			continue
		}
		rest = append(rest, rs[i])
	}
	return found, rest
}

func list(r *bottle.Resource) []bottle.Resource {
	if r == nil {
		return nil
	}
	return []bottle.Resource{*r}
}

func orNone(v any) string {
	if a, ok := v.(netip.Addr); ok && !a.IsValid() {
		return "none"
	}
	if s := fmt.Sprint(v); s != "" {
		return s
	}
	return "none"
}
