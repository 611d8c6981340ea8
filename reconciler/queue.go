package reconciler

import (
	"sort"
	"sync"
	"time"
)

// queue collects what asks for a pass. Passes are level-based and re-read
// what they look at, so a trigger only decides when the next pass runs,
// which bottles it starts first, and whether it may look at one bottle
// alone (trigger.scope); any number of triggers collapse into one pass.
//
// There are two kinds of trigger. Hints (file and runtime events) come in
// bursts, so they wait for a quiet period: a pass runs once no hint has come
// for the debounce, or maxWait after the burst began, whichever is first.
// Scheduled triggers (start, resync, retry, a relist after a watch error)
// are due at a time, but never run inside a burst, where a file may be half
// written.
type queue struct {
	debounce, maxWait time.Duration

	wake chan struct{} // capacity 1: a send never blocks, wakes the loop

	mu      sync.Mutex
	hinted  bool
	quiet   time.Time            // last hint + debounce
	first   time.Time            // when the current burst began
	at      map[string]time.Time // scheduled triggers by reason
	reasons map[string]bool      // hint reasons of the current burst
	bottles map[string]bool      // bottles named by pending triggers
	unnamed bool                 // a pending runtime hint named no bottle
	files   bool                 // a pending hint came from the spec directory
}

func newQueue(debounce time.Duration) *queue {
	return &queue{
		debounce: debounce, maxWait: 10 * debounce,
		wake: make(chan struct{}, 1),
		at:   map[string]time.Time{}, reasons: map[string]bool{}, bottles: map[string]bool{},
	}
}

// trigger is what one pass was asked for by.
type trigger struct {
	Reasons []string // sorted
	Bottles []string // sorted; bottles named by the triggers
	// Scheduled are the reasons of the scheduled triggers (At), sorted.
	Scheduled []string
	// Unnamed: a runtime hint named no bottle (e.g. after its stream
	// reconnected), so any bottle's resources may have changed.
	Unnamed bool
	// Files: a hint came from the spec directory, so any spec may have
	// changed.
	Files bool
}

// scope is the one bottle a pass for t needs to look at, or "" for every
// bottle: only runtime events about one bottle, and nothing else, ask for
// a pass over that bottle alone.
func (t trigger) scope() string {
	if len(t.Bottles) != 1 || t.Unnamed || t.Files || len(t.Scheduled) > 0 {
		return ""
	}
	return t.Bottles[0]
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// runtimeQuiet is the quiet period after a runtime event. A runtime's
// events, unlike a file being saved, leave nothing half written, so they
// need not wait out the file debounce: a heal starts sooner. It only
// gathers what Docker sends at once; the events of one docker rm -f (die,
// disconnect, destroy) are 100-400 ms apart under load, more than any
// quiet period a heal can afford, and the pass on the die heals alone
// (exits.go), so the later ones get a pass of their own that finds nothing
// to do.
const runtimeQuiet = 10 * time.Millisecond

// Hint records a debounced trigger; bottle "" names no bottle.
func (q *queue) Hint(bottle, reason string, now time.Time) {
	q.hint(bottle, reason, now, q.debounce, false)
}

// HintRuntime is Hint for a runtime event: its quiet period is
// runtimeQuiet (or the debounce, if shorter), and it never cuts short the
// quiet period of a file burst under way.
func (q *queue) HintRuntime(bottle, reason string, now time.Time) {
	q.hint(bottle, reason, now, min(runtimeQuiet, q.debounce), true)
}

func (q *queue) hint(bottle, reason string, now time.Time, quiet time.Duration, runtime bool) {
	q.mu.Lock()
	q.unnamed = q.unnamed || runtime && bottle == ""
	q.files = q.files || !runtime
	if !q.hinted {
		q.hinted, q.first, q.quiet = true, now, time.Time{}
	}
	if t := now.Add(quiet); t.After(q.quiet) {
		q.quiet = t
	}
	q.reasons[reason] = true
	if bottle != "" {
		q.bottles[bottle] = true
	}
	q.mu.Unlock()
	q.poke()
}

// At schedules a pass at t for reason, replacing any earlier schedule of
// that reason; the zero t cancels it.
func (q *queue) At(reason string, t time.Time) {
	q.mu.Lock()
	if t.IsZero() {
		delete(q.at, reason)
	} else {
		q.at[reason] = t
	}
	q.mu.Unlock()
	q.poke()
}

// Next returns the trigger of a pass due at now, consuming it, or else how
// long until one is due (negative: nothing is pending).
func (q *queue) Next(now time.Time) (trigger, bool, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var due time.Time
	switch {
	case q.hinted:
		due = q.quiet
		if limit := q.first.Add(q.maxWait); limit.Before(due) {
			due = limit
		}
	case len(q.at) > 0:
		for _, t := range q.at {
			if due.IsZero() || t.Before(due) {
				due = t
			}
		}
	default:
		return trigger{}, false, -1
	}
	if now.Before(due) {
		return trigger{}, false, due.Sub(now)
	}
	var t trigger
	if q.hinted {
		for r := range q.reasons {
			t.Reasons = append(t.Reasons, r)
		}
		q.hinted, q.reasons = false, map[string]bool{}
	}
	for r, at := range q.at {
		if !at.After(now) {
			t.Reasons = append(t.Reasons, r)
			t.Scheduled = append(t.Scheduled, r)
			delete(q.at, r)
		}
	}
	t.Unnamed, q.unnamed = q.unnamed, false
	t.Files, q.files = q.files, false
	for b := range q.bottles {
		t.Bottles = append(t.Bottles, b)
	}
	q.bottles = map[string]bool{}
	sort.Strings(t.Reasons)
	sort.Strings(t.Scheduled)
	sort.Strings(t.Bottles)
	return t, true, 0
}

// Depth is how many distinct triggers wait: each bottle named, plus one
// for a pending pass over everything.
func (q *queue) Depth(now time.Time) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.bottles)
	pending := q.hinted
	for _, t := range q.at {
		pending = pending || !t.After(now)
	}
	if pending {
		n++
	}
	return n
}
