package dockertest

import (
	"maps"
	"sync"
)

// Counter counts calls by name, for a test's wrapper of the Docker client
// that checks how many calls a driver makes.
type Counter struct {
	mu    sync.Mutex
	calls map[string]int
}

// Count records one call of name.
func (c *Counter) Count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[name]++
}

// Snapshot returns the calls counted since the last Snapshot.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := maps.Clone(c.calls)
	if m == nil {
		m = map[string]int{}
	}
	c.calls = nil
	return m
}
