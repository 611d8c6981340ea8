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

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/atomicfile"
)

// BottleState is a bottle's state as status reports it. Its values are
// part of `status -o json` and the bottle_bottles metric.
type BottleState string

// Bottle states.
const (
	StatusReady       BottleState = "Ready"
	StatusProgressing BottleState = "Progressing"
	StatusFailed      BottleState = "Failed"  // backing off: retried at NextRetry
	StatusBlocked     BottleState = "Blocked" // a terminal error (see Terminal): retried when something changes
	StatusInvalid     BottleState = "Invalid"
	StatusSuspended   BottleState = "Suspended"
	StatusOrphaned    BottleState = "Orphaned" // spec gone, kept (protected, capped or blocked)
)

// Status is what the state directory records about one bottle after a pass.
// It lives outside the spec directory, so writing it never wakes a watcher.
type Status struct {
	Bottle         string           `json:"bottle"`
	State          BottleState      `json:"state"`
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
	Role   bottle.Role   `json:"role"`
	Kind   string        `json:"kind"`
	Name   string        `json:"name"`
	State  bottle.State  `json:"state"`
	Health bottle.Health `json:"health,omitempty"`
	Detail string        `json:"detail,omitempty"`
	Subnet string        `json:"subnet,omitempty"`
	Addr   string        `json:"addr,omitempty"`
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
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("status: encode %s: %w", st.Bottle, err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir(), st.Bottle+".json"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("status: record bottle %s: %w", st.Bottle, err)
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

// All reads every status, sorted by bottle. A missing directory is no
// status. A file that does not decode is left out (see Read).
func (s StatusStore) All() ([]Status, error) {
	sts, _, err := s.Read()
	return sts, err
}

// Unreadable is a state file that exists but does not decode (a disk
// error, a crash of something other than us mid-write, a hand edit). A
// record is only a record: the bottle it was about is observed afresh, so
// the pass carries on as if it had none, and rewrites it.
type Unreadable struct {
	File string // relative to the state directory
	Err  error
}

// Read reads every status, sorted by bottle, and names the files that do
// not decode. Only a directory that cannot be listed is an error.
func (s StatusStore) Read() ([]Status, []Unreadable, error) {
	entries, err := os.ReadDir(s.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("status: read %s: %w", s.dir(), err)
	}
	var bad []Unreadable
	last, err := s.passTime()
	if err != nil {
		bad = append(bad, Unreadable{File: filepath.Base(s.passPath()), Err: err})
	}
	var out []Status
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		st, err := s.read(e)
		if err != nil {
			bad = append(bad, Unreadable{File: filepath.Join("status", e.Name()), Err: err})
			continue
		}
		if last.After(st.LastReconciled) {
			st.LastReconciled = last
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bottle < out[j].Bottle })
	return out, bad, nil
}

// RemoveUnreadable removes an unreadable status file whose bottle this
// pass recorded nothing for (one it did record was just rewritten).
func (s StatusStore) RemoveUnreadable(u Unreadable) error {
	dir, name := filepath.Split(u.File)
	if filepath.Clean(dir) != "status" {
		return nil
	}
	return s.Remove(strings.TrimSuffix(name, ".json"))
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
	if st.Bottle+".json" != e.Name() {
		return Status{}, fmt.Errorf("status: %s is about bottle %q", e.Name(), st.Bottle)
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
	b, _ := json.Marshal(passRecord{Time: t.UTC()}) // a time always encodes
	if err := atomicfile.Write(s.passPath(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("status: record pass time: %w", err)
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
