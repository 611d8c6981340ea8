package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Record is the emulator's version of smolvm's VmRecord: what create stores
// and what start/stop update. State is the last written state; the reported
// state is derived from it and the liveness of PID (see observedState).
type Record struct {
	Name  string `json:"name"`
	State string `json:"state"` // created | running | stopped | frozen | unreachable
	PID   *int   `json:"pid"`   // null after a clean stop, stale after a crash, like the real one
	// AgentDown is the emulator's own: the agent of the running VMM does
	// not answer (unreachable.go).
	AgentDown     bool              `json:"emu_agent_down,omitempty"`
	CreatedAt     int64             `json:"created_at"`
	Image         *string           `json:"image"`
	From          string            `json:"source_smolmachine,omitempty"`
	CPUs          int               `json:"cpus"`
	MemoryMiB     int               `json:"memory_mib"`
	StorageGB     *int              `json:"storage_gb"`
	OverlayGB     *int              `json:"overlay_gb"`
	Env           [][2]string       `json:"env"`
	Labels        map[string]string `json:"labels"`
	Mounts        []Mount           `json:"mounts"` // (host, guest, read_only), as smolvm stores them
	Ports         []string          `json:"ports"`
	Network       bool              `json:"network"`
	NetBackend    string            `json:"network_backend,omitempty"`
	AllowedCIDRs  []string          `json:"allowed_cidrs"`
	DNSHosts      []string          `json:"dns_filter_hosts"`
	DNS           string            `json:"dns,omitempty"`
	Workdir       string            `json:"workdir,omitempty"`
	Init          []string          `json:"init,omitempty"`
	InitCompleted bool              `json:"init_completed"`
	Cmd           []string          `json:"cmd"`
	GPU           bool              `json:"gpu"`
	GPUVramMiB    *int              `json:"gpu_vram_mib"`
	Cuda          bool              `json:"cuda"`
}

// stateFile is the whole on-disk state. One file keeps every update a single
// atomic rename.
type stateFile struct {
	Machines map[string]*Record `json:"machines"`
	// Faults counts consumed SMOLVM_EMU_FAIL_NEXT entries, keyed by entry
	// text, so "next" means next across processes.
	Faults map[string]int `json:"faults_consumed"`
}

// store is the state directory <home>/.local/share/smolvm/emu.
type store struct{ dir string }

func newStore(home string) store {
	return store{dir: filepath.Join(home, ".local", "share", "smolvm", "emu")}
}

func (s store) statePath() string { return filepath.Join(s.dir, "state.json") }

// withLock runs fn on the loaded state while holding an flock on the lock
// file, and saves the state afterwards when write is set and fn succeeded.
// The flock is what makes concurrent CLI processes safe, like the real
// SQLite reservation.
func (s store) withLock(write bool, fn func(*stateFile) error) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(s.dir, "state.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("open lock: %w", err)
	}
	defer lf.Close()
	how := syscall.LOCK_SH
	if write {
		how = syscall.LOCK_EX
	}
	if err := flock(lf, how); err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)

	st, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	if !write {
		return nil
	}
	return s.save(st)
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func (s store) load() (*stateFile, error) {
	st := &stateFile{Machines: map[string]*Record{}, Faults: map[string]int{}}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", s.statePath(), err)
	}
	if st.Machines == nil {
		st.Machines = map[string]*Record{}
	}
	if st.Faults == nil {
		st.Faults = map[string]int{}
	}
	return st, nil
}

// save writes through a temp file and rename so a killed process never
// leaves a torn state file behind.
func (s store) save(st *stateFile) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, "state-*.tmp")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.statePath()); err != nil {
		return fmt.Errorf("replace state: %w", err)
	}
	return nil
}
