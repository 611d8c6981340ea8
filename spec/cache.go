package spec

import (
	"os"
	"sync"
	"syscall"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
)

// Cache keeps what loading a file gave, keyed by the file's path and what
// stat says of it (device, inode, size, modification and change times), so
// a reconciler that loads the same directory every pass checks every file
// every pass but reads and parses only what changed. Any write to a file
// moves its change time, which no program can set back, so an edit is never
// missed. Entries not used by the last load are dropped. Make one with
// NewCache; a nil *Cache loads every file afresh. A Cache is safe for
// concurrent use, and what it returns must not be changed.
type Cache struct {
	mu   sync.Mutex
	m    map[cacheKey]*parsed
	used map[cacheKey]bool
}

type cacheKey struct {
	file     string
	dev, ino uint64
	size     int64
	mod, chg time.Time
	opts     string // Options.key
}

type parsed struct {
	b        *Bottle
	name     string
	doc      *yamlv3.Node // nil when a verdict spared the parse
	problems []Problem
	verdict  string // the file's key in Options.Verdicts, if any
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{m: map[cacheKey]*parsed{}, used: map[cacheKey]bool{}}
}

// load returns what load gives for file, from the cache when stat says
// the file is the one loaded before.
func (c *Cache) load(file string, opts Options, load func() *parsed) *parsed {
	if c == nil {
		return load()
	}
	fi, err := os.Stat(file)
	if err != nil {
		return load() // unreadable: load says why, every time
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return load()
	}
	k := cacheKey{file: file, dev: uint64(st.Dev), ino: st.Ino, size: fi.Size(), mod: fi.ModTime(),
		chg: time.Unix(st.Ctim.Sec, st.Ctim.Nsec), opts: opts.key()}
	c.mu.Lock()
	p, hit := c.m[k]
	c.used[k] = true
	c.mu.Unlock()
	if !hit {
		// Stat came first: a write after it moves the change time again,
		// so the next load sees it.
		p = load()
		c.mu.Lock()
		c.m[k] = p
		c.mu.Unlock()
	}
	return p
}

// sweep drops what the load that just ended did not use.
func (c *Cache) sweep() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if !c.used[k] {
			delete(c.m, k)
		}
	}
	c.used = map[cacheKey]bool{}
}
