package bottle

// Event is one out-of-band change to an instance's resources that a runtime
// tells of (a bundle removed, killed or unhealthy). Events are hints: every
// pass re-reads everything.
type Event struct {
	// Bottle is the bottle it concerns; "" means any bottle, e.g. after a
	// reconnect, when events may have been missed.
	Bottle string
	// Reason says what happened, e.g. "docker die". An event without one
	// only tells a run state (below) and starts no pass.
	Reason string
	// ID is the runtime ID of the resource it is about, if it names one,
	// and State, if set, the run state that resource has just entered:
	// StateStopped for Docker's die, StateRunning for its start. A
	// runtime's list may say so only later. Detail is for humans, e.g.
	// "exited (137)".
	ID     string
	State  State
	Detail string
}
