package reconciler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// EventSource tells of out-of-band changes to an instance's resources (a
// bundle removed, killed or unhealthy), so drift is put right at once rather
// than at the next resync. Events are hints: every pass re-reads what it
// looks at, and a pass that events about one bottle start looks at that
// bottle alone (see Watcher).
type EventSource interface {
	// WatchEvents calls notify for each change until ctx ends, reconnecting
	// by itself when its stream breaks.
	WatchEvents(ctx context.Context, instance string, notify func(bottle.Event))
}

// Watch defaults.
const (
	DefaultDebounce        = 300 * time.Millisecond
	DefaultResync          = 30 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

// Watch restart backoff, as the kubelet's file source: 1 s doubling to 20 s.
const (
	watchRetryBase = time.Second
	watchRetryMax  = 20 * time.Second
)

// WatchOptions configure a Watcher. Zero values mean the defaults.
type WatchOptions struct {
	// Debounce is the quiet period after a file or runtime event before a
	// pass runs, and the extra quiet period before a removed spec's bottle
	// is torn down.
	Debounce time.Duration
	// Resync is the period of full passes, ±10%, events or not.
	Resync time.Duration
	// ShutdownTimeout bounds how long operations in flight may take to
	// finish once Run's context ends.
	ShutdownTimeout time.Duration
	// Backoff is the retry policy of a failing bottle.
	Backoff Backoff
	// Events, when set, reports runtime changes between passes.
	Events EventSource
	// Metrics, when set, is updated after every pass.
	Metrics *Metrics
	// OnPass, when set, is called after every pass, from the loop.
	OnPass func(PassReport)

	// Test seams: the watch restart backoff, and the fsnotify watcher.
	watchRetry time.Duration
	newWatcher func() (dirWatcher, error)
}

// PassReport is what one pass of a Watcher did.
type PassReport struct {
	Trigger  []string      // why it ran
	Duration time.Duration // plan and apply
	Ops      int           // operations applied
	Held     int           // bottles whose operations waited (backoff, tentative delete)
	Failed   int           // bottles whose operations failed
	Err      error         // the pass could not plan, or could not record status
	Pass     *Pass         // nil when it could not plan
}

// Watcher runs passes whenever something may have changed: a spec file, a
// runtime event, a retry coming due, a resync, or a request (SIGHUP).
//
// Passes run one at a time, each over every bottle that is due; the
// executor works on up to Concurrency bottles of a pass at once. A pass
// that only runtime events about one bottle asked for (its bundle died) is
// scoped to that bottle: it lists that bottle's resources alone (a label
// filter on the same one call per kind), plans and records that bottle
// alone, and leaves the others as the last pass left them, so a heal costs
// the same at 10 bottles as at 250. Anything that may concern others (a
// spec file, a resync, a retry, events about two bottles or none) gets a
// pass over every bottle, and only such a pass tears a bottle down. So no
// bottle ever has two operations at once, and each pass's statuses come from
// one consistent snapshot. The cost is that a pass that meets a slow
// operation (a bundle waiting for its ready line, up to its ready timeout)
// delays the next pass. Letting passes overlap, skipping busy bottles, would
// need Apply to record only the statuses of the bottles it worked on, since
// a snapshot taken beside a running operation is stale by the time it would
// be written; we chose the simpler rule, where no status is ever written from
// a stale snapshot.
type Watcher struct {
	r    *Reconciler
	opts WatchOptions
	q    *queue
	now  func() time.Time

	watching atomic.Bool // the spec directory is watched
	passed   atomic.Bool // a pass has completed
	exits    exits       // resources events said stopped, for the next pass

	// Owned by the loop goroutine.
	fps     map[string]string    // desired fingerprint of each bottle, last pass
	retry   map[string]retryInfo // bottles backing off
	blocked map[string]bool      // bottles Blocked by a terminal error
	removed map[string]time.Time // bottles whose spec went, when first seen gone
}

type retryInfo struct {
	at       time.Time
	failures int
}

// Watcher returns a watcher over r's spec directory.
func (r *Reconciler) Watcher(opts WatchOptions) *Watcher {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Backoff.Base <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.watchRetry <= 0 {
		opts.watchRetry = watchRetryBase
	}
	if opts.newWatcher == nil {
		opts.newWatcher = newFSWatcher
	}
	return &Watcher{
		r: r, opts: opts, q: newQueue(opts.Debounce), now: r.now,
		fps: map[string]string{}, retry: map[string]retryInfo{}, blocked: map[string]bool{}, removed: map[string]time.Time{},
	}
}

// Ready reports whether a pass has completed and the spec directory is
// watched.
func (w *Watcher) Ready() bool { return w.passed.Load() && w.watching.Load() }

// ReasonSignal is the trigger reason of a pass someone asked for (SIGHUP):
// it runs at once, and works on bottles that are backing off too.
const ReasonSignal = "signal"

// Scheduled trigger reasons that concern only some bottles: a Blocked
// bottle is not retried for them.
const (
	reasonRetry   = "retry"           // a failing bottle's retry time came
	reasonConfirm = "confirm removal" // a removed spec's quiet period ended
)

// Trigger asks for a full pass now. It never blocks. With ReasonSignal the
// pass also retries the bottles that are backing off.
func (w *Watcher) Trigger(reason string) { w.q.At(reason, w.now()) }

// seed takes what the last run recorded: each bottle's spec fingerprint,
// so a spec changed while nothing watched counts as changed, and the retry
// times of failing bottles, so a restarted watcher keeps their backoff.
func (w *Watcher) seed(log logr.Logger) {
	sts, err := w.r.status.All()
	if err != nil {
		log.Error(err, "cannot read the recorded statuses; backoff starts over")
		return
	}
	now := w.now()
	for _, st := range sts {
		if st.Fingerprint != "" {
			w.fps[st.Bottle] = st.Fingerprint
		}
		if st.State == StatusBlocked {
			w.blocked[st.Bottle] = true
		}
		if st.State == StatusFailed && st.NextRetry != nil {
			// A retry further off than the backoff allows was recorded
			// before the clock jumped back: it is not waited for.
			at := *st.NextRetry
			if latest := now.Add(w.opts.Backoff.Delay(st.Failures)); at.After(latest) {
				at = latest
			}
			w.retry[st.Bottle] = retryInfo{at: at, failures: st.Failures}
		}
	}
}

// Run watches and reconciles until ctx ends, then returns nil once the
// operations in flight have finished (or ShutdownTimeout has passed).
func (w *Watcher) Run(ctx context.Context) error {
	log := w.r.log.WithName("watch")
	var wg sync.WaitGroup
	defer wg.Wait() // the helpers below end with ctx
	// The first pass runs once the watch is in place (or failed), so no
	// change between the two is missed.
	attempted := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.watchDir(ctx, attempted)
	}()
	select {
	case <-attempted:
	case <-ctx.Done():
	}
	if w.opts.Events != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.opts.Events.WatchEvents(ctx, w.r.cfg.Instance, func(ev bottle.Event) {
				w.exits.record(ev)
				if ev.Reason != "" {
					w.q.HintRuntime(ev.Bottle, ev.Reason, w.now())
				}
			})
		}()
	}
	w.seed(log)
	log.Info("watching", "dir", w.r.cfg.Dir, "instance", w.r.cfg.Instance, "debounce", w.opts.Debounce.String(), "resync", w.opts.Resync.String())
	w.q.At("start", w.now())
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	prepared := false
	for {
		if ctx.Err() != nil {
			log.Info("stopped")
			return nil
		}
		t, due, wait := w.q.Next(w.now())
		w.opts.Metrics.setDepth(w.q.Depth(w.now()))
		if due {
			rep := w.pass(ctx, log, t)
			if !prepared && rep.Pass != nil && len(rep.Pass.Desired.Bottles) > 0 {
				prepared = true
				w.prepare(ctx, log, &wg)
			}
			continue
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
		case <-w.q.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// prepare starts each Preparer's Prepare beside the passes. A failure only
// costs the first create its time, and that create reports what is wrong.
func (w *Watcher) prepare(ctx context.Context, log logr.Logger, wg *sync.WaitGroup) {
	for _, d := range w.r.drivers() {
		if p, ok := d.(Preparer); ok {
			wg.Go(func() {
				if err := p.Prepare(ctx); err != nil && ctx.Err() == nil {
					log.V(1).Info("cannot prepare ahead; the first create will", "driver", d.Kind(), "error", err.Error())
				}
			})
		}
	}
}

// pass runs one pass: plan, hold what must wait, apply the rest.
func (w *Watcher) pass(ctx context.Context, log logr.Logger, t trigger) PassReport {
	start := w.now()
	rep := PassReport{Trigger: t.Reasons}
	// Planning changes nothing, so a signal may cut it short at once.
	scope := t.scope()
	p, err := w.r.plan(ctx, w.exits.take(scope), scope)
	if err != nil {
		rep.Duration, rep.Err = w.now().Sub(start), err
		if ctx.Err() == nil {
			// A missing or unreadable directory plans nothing, so nothing is
			// torn down; the resync (or the watch coming back) tries again.
			log.Error(err, "pass failed, nothing was changed", "trigger", t.Reasons)
			w.opts.Metrics.planFailed(rep.Duration)
		}
		w.scheduleResync(scope)
		w.report(rep)
		return rep
	}
	held := w.hold(ctx, p, t, start)
	opCtx, done := w.opContext(ctx)
	p, err = w.r.Apply(opCtx, p)
	done()
	w.learn(p)
	w.passed.Store(true)

	rep.Pass, rep.Err, rep.Held = p, err, held
	rep.Duration = w.now().Sub(start)
	for _, res := range p.Results {
		rep.Ops += len(res.Done)
		if res.Err != nil {
			rep.Failed++
		}
	}
	if err != nil {
		log.Error(err, "pass could not record status", "trigger", t.Reasons)
	}
	kv := []any{"trigger", strings.Join(t.Reasons, ","), "duration", rep.Duration.Round(time.Millisecond).String(),
		"ops", rep.Ops, "failed", rep.Failed, "held", held}
	if p.Scope != "" {
		kv = append(kv, "scope", p.Scope)
	}
	log.Info("pass", kv...)
	log.V(1).Info("pass plan", "bottles", t.Bottles, "plan", p.Plan.String())
	w.opts.Metrics.pass(p, held, rep.Duration)
	w.scheduleResync(p.Scope)
	w.report(rep)
	return rep
}

func (w *Watcher) report(rep PassReport) {
	if w.opts.OnPass != nil {
		w.opts.OnPass(rep)
	}
}

// scheduleResync puts the next pass over every bottle one resync period
// after a pass over every bottle. A scoped pass leaves it where it is: a
// bottle whose bundle dies every few seconds must not put off, for ever,
// the pass that heals what no event tells of (a smolvm guest, a flushed
// firewall rule) in the others.
func (w *Watcher) scheduleResync(scope string) {
	if scope != "" {
		return
	}
	jitter := 0.9 + 0.2*rand.Float64() // ±10%, so instances started together spread out
	w.q.At("resync", w.now().Add(time.Duration(float64(w.opts.Resync)*jitter)))
}

// hold takes out of p's plan what must wait, sets the executor's order, and
// returns how many bottles were held:
//   - a bottle backing off waits for its retry time, unless its spec changed
//     or someone asked for this pass (SIGHUP);
//   - a Blocked bottle (a terminal error) waits until something it depends
//     on may have changed (see worldChanged);
//   - a bottle whose spec is gone is torn down only if it was already gone
//     one quiet period ago: editors and `mv` remove a file and put it back,
//     and that must never destroy and recreate the bottle.
func (w *Watcher) hold(ctx context.Context, p *Pass, t trigger, now time.Time) int {
	s := &passSchedule{stop: ctx.Done(), resets: map[string]bool{}, backoff: w.opts.Backoff}
	fps := map[string]string{}
	var changed []string
	for n, db := range p.Desired.Bottles {
		fps[n] = fingerprint(db)
		old, known := w.fps[n]
		switch {
		case !known:
			changed = append(changed, n)
		case old != fps[n]:
			changed = append(changed, n)
			s.resets[n] = true
			delete(w.retry, n)
		}
	}
	if p.Scope != "" {
		for n, fp := range w.fps {
			if n != p.Scope {
				fps[n] = fp // not looked at: as the last pass left it
			}
		}
	}
	w.fps = fps
	sort.Strings(changed)
	blockedRetry := worldChanged(t)
	for _, n := range changed {
		blockedRetry[n] = true
	}
	// New and changed specs first, then what runtime events named, then
	// the resync backlog (by name, in the executor).
	s.order = append(changed, t.Bottles...)

	asked := slices.Contains(t.Reasons, ReasonSignal)
	hold := map[string]bool{}
	gone := map[string]bool{}
	for _, b := range p.Plan.Bottles() {
		if p.Desired.Bottles[b] == nil && p.Desired.Held[b] == "" {
			gone[b] = true
			since, seen := w.removed[b]
			if !seen {
				w.removed[b] = now
			}
			if !seen || now.Sub(since) < w.opts.Debounce {
				hold[b] = true
			}
			continue
		}
		if ri, ok := w.retry[b]; ok && now.Before(ri.at) && !asked {
			hold[b] = true
			p.Plan.Notes = append(p.Plan.Notes, backoffNote(b, ri.failures, ri.at))
		}
		if w.blocked[b] && !asked && !blockedRetry[""] && !blockedRetry[b] {
			hold[b] = true
			p.Plan.Notes = append(p.Plan.Notes, Note{Bottle: b, Kind: NoteUnchanged, Message: unchangedMessage})
		}
	}
	var confirm time.Time
	for b, since := range w.removed {
		if p.Scope != "" && b != p.Scope {
			continue // not looked at
		}
		if !gone[b] {
			delete(w.removed, b) // back, or no longer ours to tear down
			continue
		}
		if at := since.Add(w.opts.Debounce); hold[b] && (confirm.IsZero() || at.Before(confirm)) {
			confirm = at
		}
	}
	// A held teardown is looked at again after one more quiet period. A
	// scoped pass has no teardown (its bottle has a spec), and leaves the
	// confirmation of others as it was.
	if p.Scope == "" {
		w.q.At(reasonConfirm, confirm)
	}
	if len(hold) > 0 {
		kept := p.Plan.Ops[:0:0]
		for _, op := range p.Plan.Ops {
			if !hold[op.Bottle] {
				kept = append(kept, op)
			}
		}
		p.Plan.Ops = kept
	}
	p.sched = s
	return len(hold)
}

// learn takes each bottle's backoff from the statuses the pass recorded,
// and schedules a pass for the earliest retry.
func (w *Watcher) learn(p *Pass) {
	for _, st := range p.Statuses {
		if st.State == StatusFailed && st.NextRetry != nil {
			w.retry[st.Bottle] = retryInfo{at: *st.NextRetry, failures: st.Failures}
		} else {
			delete(w.retry, st.Bottle)
		}
		if st.State == StatusBlocked {
			w.blocked[st.Bottle] = true
		} else {
			delete(w.blocked, st.Bottle)
		}
	}
	for b := range w.retry {
		if _, ok := w.fps[b]; !ok {
			delete(w.retry, b)
		}
	}
	for b := range w.blocked {
		if _, ok := w.fps[b]; !ok {
			delete(w.blocked, b)
		}
	}
	var next time.Time
	for _, ri := range w.retry {
		if next.IsZero() || ri.at.Before(next) {
			next = ri.at
		}
	}
	w.q.At(reasonRetry, next)
}

// worldChanged says which Blocked bottles a pass triggered by t retries:
// key "" for all of them. A scheduled pass over everything (start, resync,
// a relist after a watch error, a request) and a runtime event that named no
// bottle retry all; a runtime event retries the bottles it named. File
// events alone retry none: a bottle whose spec changed is retried by its new
// fingerprint, and a foreign resource that blocks one carries no labels of
// ours, so only the resync sees it go.
func worldChanged(t trigger) map[string]bool {
	out := map[string]bool{"": t.Unnamed}
	for _, r := range t.Scheduled {
		if r != reasonRetry && r != reasonConfirm {
			out[""] = true
		}
	}
	for _, b := range t.Bottles {
		out[b] = true
	}
	return out
}

var errShutdownTimeout = errors.New("shutdown timeout: operation cut short")

// opContext is the context operations run under: it outlives ctx by up to
// ShutdownTimeout, so a signal lets operations in flight finish (the
// executor starts no new one once ctx ends). done must be called.
func (w *Watcher) opContext(ctx context.Context) (context.Context, func()) {
	opCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	finished := make(chan struct{})
	go func() {
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(w.opts.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			cancel(errShutdownTimeout)
		}
	}()
	return opCtx, func() {
		close(finished)
		cancel(nil)
	}
}

// dirWatcher is the part of *fsnotify.Watcher the watch uses: a seam for
// tests to inject errors.
type dirWatcher interface {
	Add(name string) error
	Close() error
	Channels() (<-chan fsnotify.Event, <-chan error)
}

type fsWatcher struct{ *fsnotify.Watcher }

func (f fsWatcher) Channels() (<-chan fsnotify.Event, <-chan error) { return f.Events, f.Errors }

func newFSWatcher() (dirWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return fsWatcher{w}, nil
}

// watchDir watches the spec directory until ctx ends, restarting the
// watch with backoff when it fails (e.g. the directory was removed).
func (w *Watcher) watchDir(ctx context.Context, attempted chan<- struct{}) {
	log := w.r.log.WithName("watch")
	delay := w.opts.watchRetry
	for restart := false; ; restart = true {
		established, err := w.watchOnce(ctx, restart, attempted)
		w.watching.Store(false)
		if ctx.Err() != nil {
			return
		}
		if established {
			delay = w.opts.watchRetry
		}
		// Events may have been lost: relist now, whatever the watch does.
		w.q.At("watch error", w.now())
		log.Error(err, "spec directory watch failed; restarting it", "dir", w.r.cfg.Dir, "retryIn", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, watchRetryMax)
	}
}

// watchOnce runs one fsnotify watch of the directory (not of each file:
// editors replace files, which a per-file watch would lose). It returns
// whether the watch was established, and why it ended.
// attempted is closed after the first attempt to add the watch.
func (w *Watcher) watchOnce(ctx context.Context, restart bool, attempted chan<- struct{}) (bool, error) {
	defer func() {
		if !restart && attempted != nil {
			close(attempted) // the first attempt failed
		}
	}()
	dir := filepath.Clean(w.r.cfg.Dir)
	fw, err := w.opts.newWatcher()
	if err != nil {
		return false, fmt.Errorf("watch: start: %w", err)
	}
	defer fw.Close()
	if err := fw.Add(dir); err != nil {
		return false, fmt.Errorf("watch: add %s: %w", dir, err)
	}
	w.watching.Store(true)
	if !restart {
		close(attempted)
		attempted = nil
	} else {
		// Anything may have changed while nothing was watching.
		w.q.At("watch started", w.now())
	}
	events, errs := fw.Channels()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case ev, ok := <-events:
			if !ok {
				return true, errors.New("watch: event stream closed")
			}
			if filepath.Clean(ev.Name) == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				return true, fmt.Errorf("watch: spec directory %s was removed or moved", dir)
			}
			if reason, ok := relevant(ev); ok {
				w.q.Hint("", reason, w.now())
			}
		case err, ok := <-errs:
			if !ok {
				return true, errors.New("watch: error stream closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were dropped, but the watch goes on: relist in full.
				w.q.At("event overflow", w.now())
				continue
			}
			return true, fmt.Errorf("watch: %w", err)
		}
	}
}

// relevant says whether ev can change what the directory holds, and gives
// the trigger reason. Spec files count, and so does anything whose name starts
// with "..": a Kubernetes ConfigMap mount swaps its ..data link to a new
// ..2026_... directory, while the spec links themselves never change.
// Chmod changes nothing a pass reads.
func relevant(ev fsnotify.Event) (string, bool) {
	if ev.Op == fsnotify.Chmod || ev.Op == 0 {
		return "", false
	}
	base := filepath.Base(ev.Name)
	if !spec.IsSpecFile(base) && !strings.HasPrefix(base, "..") {
		return "", false
	}
	return "file", true
}
