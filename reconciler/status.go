package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Bottle states as status reports them.
const (
	StatusReady       = "Ready"
	StatusProgressing = "Progressing"
	StatusFailed      = "Failed"
	StatusInvalid     = "Invalid"
	StatusSuspended   = "Suspended"
	StatusOrphaned    = "Orphaned" // spec gone, kept (protected, capped or blocked)
)

// Status is what the state directory records about one bottle after a pass.
// It lives outside the spec directory, so writing it never wakes a watcher.
type Status struct {
	Bottle         string           `json:"bottle"`
	State          string           `json:"state"`
	Reason         string           `json:"reason,omitempty"`
	Source         string           `json:"source,omitempty"`
	Protect        bool             `json:"protect,omitempty"`
	Resources      []StatusResource `json:"resources"`
	LastError      string           `json:"lastError,omitempty"`
	Failures       int              `json:"failures,omitempty"` // consecutive failed passes
	LastReconciled time.Time        `json:"lastReconciled"`
	NextRetry      *time.Time       `json:"nextRetry,omitempty"`
	// Fingerprint identifies the last valid spec of the bottle: when the
	// spec changes, its failures start over, even across restarts.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// StatusResource is one resource as last seen.
type StatusResource struct {
	Role   Role   `json:"role"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	State  State  `json:"state"`
	Health Health `json:"health,omitempty"`
	Detail string `json:"detail,omitempty"`
	Subnet string `json:"subnet,omitempty"`
	Addr   string `json:"addr,omitempty"`
}

// StatusStore reads and writes status files in a state directory.
//
// At rest nothing should cost anything, and a pass over a thousand
// converged bottles must not rewrite a thousand files: a pass writes a
// bottle's file only when what it says changed, and records its own time
// once, in pass.json; All gives each bottle the later of its file's
// LastReconciled and that time (every pass looks at every bottle that has a
// file).
type StatusStore struct {
	Dir string
	// cache, when set, keeps decoded files for All while their size and
	// modification time stay the same.
	cache *statusCache
}

// NewStatusStore returns a store for dir that reuses what it decoded.
func NewStatusStore(dir string) StatusStore {
	return StatusStore{Dir: dir, cache: &statusCache{m: map[string]cachedStatus{}}}
}

type statusCache struct {
	mu sync.Mutex
	m  map[string]cachedStatus // by file name
}

type cachedStatus struct {
	size int64
	mod  time.Time
	st   Status
}

func (s StatusStore) dir() string { return filepath.Join(s.Dir, "status") }

// Write records st, atomically.
func (s StatusStore) Write(st Status) error {
	if err := os.MkdirAll(s.dir(), 0o700); err != nil {
		return fmt.Errorf("status: create %s: %w", s.dir(), err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("status: encode %s: %w", st.Bottle, err)
	}
	tmp, err := os.CreateTemp(s.dir(), ".tmp-*")
	if err != nil {
		return fmt.Errorf("status: write %s: %w", st.Bottle, err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("status: write %s: %w", st.Bottle, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir(), st.Bottle+".json")); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("status: write %s: %w", st.Bottle, err)
	}
	return nil
}

// Remove forgets a bottle that no longer exists anywhere.
func (s StatusStore) Remove(bottle string) error {
	err := os.Remove(filepath.Join(s.dir(), bottle+".json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("status: remove %s: %w", bottle, err)
	}
	return nil
}

// All reads every status, sorted by bottle. A missing directory is no status.
func (s StatusStore) All() ([]Status, error) {
	entries, err := os.ReadDir(s.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("status: read %s: %w", s.dir(), err)
	}
	last, err := s.passTime()
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		st, err := s.read(e)
		if err != nil {
			return nil, err
		}
		if last.After(st.LastReconciled) {
			st.LastReconciled = last
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bottle < out[j].Bottle })
	return out, nil
}

// read decodes one status file, or takes it from the cache.
func (s StatusStore) read(e fs.DirEntry) (Status, error) {
	var info fs.FileInfo
	if s.cache != nil {
		var err error
		if info, err = e.Info(); err != nil {
			return Status{}, fmt.Errorf("status: read %s: %w", e.Name(), err)
		}
		s.cache.mu.Lock()
		c, ok := s.cache.m[e.Name()]
		s.cache.mu.Unlock()
		if ok && c.size == info.Size() && c.mod.Equal(info.ModTime()) {
			return c.st, nil
		}
	}
	b, err := os.ReadFile(filepath.Join(s.dir(), e.Name()))
	if err != nil {
		return Status{}, fmt.Errorf("status: read %s: %w", e.Name(), err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, fmt.Errorf("status: decode %s: %w", e.Name(), err)
	}
	if s.cache != nil {
		s.cache.mu.Lock()
		s.cache.m[e.Name()] = cachedStatus{size: info.Size(), mod: info.ModTime(), st: st}
		s.cache.mu.Unlock()
	}
	return st, nil
}

// passRecord is pass.json: when the last pass ran.
type passRecord struct {
	Time time.Time `json:"time"`
}

func (s StatusStore) passPath() string { return filepath.Join(s.Dir, "pass.json") }

// WritePassTime records that a pass looked at every bottle at t.
func (s StatusStore) WritePassTime(t time.Time) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("status: create %s: %w", s.Dir, err)
	}
	b, _ := json.Marshal(passRecord{Time: t.UTC()}) // a time always encodes
	tmp := s.passPath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("status: write pass time: %w", err)
	}
	if err := os.Rename(tmp, s.passPath()); err != nil {
		return fmt.Errorf("status: write pass time: %w", err)
	}
	return nil
}

func (s StatusStore) passTime() (time.Time, error) {
	b, err := os.ReadFile(s.passPath())
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("status: read pass time: %w", err)
	}
	var r passRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return time.Time{}, fmt.Errorf("status: decode %s: %w", s.passPath(), err)
	}
	return r.Time, nil
}

// sameStatus reports whether a and b say the same but for LastReconciled,
// which pass.json carries.
func sameStatus(a, b Status) bool {
	sameTime := func(x, y *time.Time) bool { return x == nil && y == nil || x != nil && y != nil && x.Equal(*y) }
	return a.Bottle == b.Bottle && a.State == b.State && a.Reason == b.Reason && a.Source == b.Source &&
		a.Protect == b.Protect && a.LastError == b.LastError && a.Failures == b.Failures &&
		a.Fingerprint == b.Fingerprint && sameTime(a.NextRetry, b.NextRetry) && slices.Equal(a.Resources, b.Resources)
}
