package reconciler

// NoteKind says why a Note's bottle is left alone or cannot converge. Its
// values are part of `plan -o json`, `diff -o json` and the failure lines of
// --once: they never change.
type NoteKind string

// Note kinds.
const (
	NoteHeld         NoteKind = "held"         // its spec is invalid or claimed twice
	NoteSuspended    NoteKind = "suspended"    // spec.suspend is true
	NoteUnobservable NoteKind = "unobservable" // its guest's runtime cannot be observed
	NoteConflict     NoteKind = "conflict"     // another instance owns a name it needs
	NoteWaiting      NoteKind = "waiting"      // its bundle is starting
	NoteProtected    NoteKind = "protected"    // spec gone (or down asked), but protect is set
	NoteCapped       NoteKind = "capped"       // spec gone, but the pass's deletion cap is reached
	NoteBlocked      NoteKind = "blocked"      // spec gone, but teardown is blocked (an unreadable spec)
	NoteMissing      NoteKind = "missing"      // down named a bottle that has no resources
	NoteBackoff      NoteKind = "backoff"      // a watcher holds a failing bottle until its retry time
	NoteUnchanged    NoteKind = "unchanged"    // a watcher holds a Blocked bottle: nothing it depends on changed
	NoteTentative    NoteKind = "tentative"    // a watcher holds a teardown until a quiet period confirms it
)

// Note is something about a bottle that is not an operation: why it is left
// alone, or why it cannot converge.
type Note struct {
	Bottle  string   `json:"bottle"`
	Kind    NoteKind `json:"kind"`
	Message string   `json:"message"`
}

// Settled reports whether a note leaves nothing to do: the bottle is as its
// spec asks (suspended, or protected from a teardown nobody forced), so a
// pass that has only such notes converged.
func (k NoteKind) Settled() bool { return k == NoteSuspended || k == NoteProtected }
