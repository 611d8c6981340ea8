package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/internal/flock"
)

// Holder says who holds an instance's lock.
type Holder struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

func (h Holder) String() string {
	return fmt.Sprintf("pid %d (%s) since %s", h.PID, h.Command, h.Since.Format(time.RFC3339))
}

// LockHeldError is returned when another process holds the lock.
type LockHeldError struct {
	Path   string
	Holder Holder
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("instance lock %s is held by %s", e.Path, e.Holder)
}

// Lock is an exclusive lock on one reconciler instance, so two reconcilers
// (or a --once run beside a watcher) never plan and apply over each other.
// It is an flock, so it is released when the holding process dies, however
// it dies.
type Lock struct {
	f *flock.File
}

// AcquireLock takes the lock in stateDir. With wait > 0 it waits until it
// gets the lock or wait passes; then, or with wait == 0, a held lock is a
// *LockHeldError naming the holder.
func AcquireLock(ctx context.Context, stateDir string, wait time.Duration) (*Lock, error) {
	path := filepath.Join(stateDir, "lock")
	f, err := flock.Open(path, 0o700)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		err = f.Lock(wctx)
		cancel()
		if ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("lock: wait for %s: %w", path, context.Cause(ctx))
		}
	}
	if err != nil || wait <= 0 {
		// Once more without waiting: a held lock names its holder.
		err = f.TryLock()
	}
	if errors.Is(err, flock.ErrHeld) {
		h := readHolder(path)
		f.Close()
		return nil, &LockHeldError{Path: path, Holder: h}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock: %w", err)
	}
	h := Holder{PID: os.Getpid(), Command: strings.Join(os.Args, " "), Since: time.Now().UTC().Truncate(time.Second)}
	b, _ := json.Marshal(h)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(b, '\n'), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}

func readHolder(path string) Holder {
	var h Holder
	b, err := os.ReadFile(path)
	if err == nil {
		_ = json.Unmarshal(b, &h)
	}
	return h
}
