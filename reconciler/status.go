package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
type StatusStore struct{ Dir string }

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
	var out []Status
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir(), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("status: read %s: %w", e.Name(), err)
		}
		var st Status
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("status: decode %s: %w", e.Name(), err)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bottle < out[j].Bottle })
	return out, nil
}
