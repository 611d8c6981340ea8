// Package flock is an exclusive flock(2) on a lock file: taken at once or
// not at all (TryLock), or waited for until a context ends (Lock). The lock
// belongs to the open file, so it is released when the file is closed or
// its process dies, however it dies; two opens of one path, even in one
// process, exclude each other.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrHeld is TryLock's error when another open file holds the lock.
var ErrHeld = errors.New("lock held by another")

// File is an open lock file.
type File struct {
	*os.File
}

// Open opens the lock file at path, creating it (mode 0600) and its
// directory (mode dirPerm) when missing. It takes no lock.
func Open(path string, dirPerm os.FileMode) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return nil, fmt.Errorf("create the directory of lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	return &File{f}, nil
}

// TryLock takes the lock without waiting: nil once held, ErrHeld when
// another open file holds it.
func (l *File) TryLock() error {
	for {
		err := unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return fmt.Errorf("lock %s: %w", l.Name(), ErrHeld)
		case !errors.Is(err, unix.EINTR):
			return fmt.Errorf("lock %s: %w", l.Name(), err)
		}
	}
}

// maxRetry bounds Lock's wait between two tries.
const maxRetry = 50 * time.Millisecond

// Lock waits until the lock is held or ctx ends, and then returns ctx's
// cause. It tries again and again without blocking, each wait twice the
// last up to maxRetry, since a blocking flock cannot be interrupted; it
// costs nothing unless the lock is held by another.
func (l *File) Lock(ctx context.Context) error {
	for delay := time.Millisecond; ; delay = min(2*delay, maxRetry) {
		err := l.TryLock()
		if !errors.Is(err, ErrHeld) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for lock %s: %w", l.Name(), context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Unlock releases the lock and keeps the file open.
func (l *File) Unlock() error {
	if err := unix.Flock(int(l.Fd()), unix.LOCK_UN); err != nil {
		return fmt.Errorf("unlock %s: %w", l.Name(), err)
	}
	return nil
}
