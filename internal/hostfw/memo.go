package hostfw

import "sync"

// Memo remembers, by rule comment, how a resource's rules differed from
// what they should be at the last read of the whole table, for the passes
// that do not read it (a heal's pass over one bottle). An entry stands
// until the next whole read sets it again, or until the driver's own write
// puts those rules back or removes them, which clears it: what a pass that
// skips the read reports is what the last read said, amended by what this
// process has done since. The zero Memo is ready to use; a nil one
// remembers nothing.
type Memo struct {
	mu    sync.Mutex
	drift map[string]string
}

// Set records the drift of the rules tagged comment; "" clears it.
func (m *Memo) Set(comment, drift string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if drift == "" {
		delete(m.drift, comment)
		return
	}
	if m.drift == nil {
		m.drift = map[string]string{}
	}
	m.drift[comment] = drift
}

// Drift returns the drift last recorded for the rules tagged comment.
func (m *Memo) Drift(comment string) string {
	if m == nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drift[comment]
}
