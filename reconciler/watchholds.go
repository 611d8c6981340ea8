package reconciler

import (
	"fmt"
	"time"
)

// A plan lists what a pass would do; a watcher's pass holds some of it
// back (see Watcher.hold). WatchHolds says which, so that `plan` tells what
// watch mode would do, not only what --once would.
//
// The notes it returns are exactly the watcher's, from what the state
// directory recorded: a teardown of a removed spec (tentative until a pass
// one quiet period later confirms it), a bottle backing off until its
// recorded retry time, and a Blocked bottle waiting for a change. The
// watcher's other decisions (order, which trigger) change when, never what.
func (p *Pass) WatchHolds(now time.Time) []Note {
	prev := make(map[string]Status, len(p.prev))
	for _, st := range p.prev {
		prev[st.Bottle] = st
	}
	var out []Note
	for _, b := range p.Plan.Bottles() {
		db := p.Desired.Bottles[b]
		if db == nil {
			if p.Desired.Held[b] == "" {
				out = append(out, Note{Bottle: b, Kind: NoteTentative, Message: tentativeMessage})
			}
			continue
		}
		st, ok := prev[b]
		if !ok || st.Fingerprint != fingerprint(db) {
			continue // a new or changed spec is tried at once
		}
		switch {
		case st.State == StatusFailed && st.NextRetry != nil && now.Before(*st.NextRetry):
			out = append(out, backoffNote(b, st.Failures, *st.NextRetry))
		case st.State == StatusBlocked:
			out = append(out, Note{Bottle: b, Kind: NoteUnchanged, Message: unchangedMessage})
		}
	}
	return out
}

const (
	tentativeMessage = "spec file removed: a watcher tears the bottle down only if a pass one quiet period (--debounce) after it first sees the spec gone still finds it gone; --once tears it down at once"
	unchangedMessage = "blocked by an error that retrying does not fix; retried when its spec or its resources change, on SIGHUP, or at the next resync"
)

func backoffNote(bottle string, failures int, at time.Time) Note {
	return Note{Bottle: bottle, Kind: NoteBackoff,
		Message: fmt.Sprintf("failed %d time(s) in a row; next retry at %s", failures, at.Format(time.RFC3339))}
}
