package dockerx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SubnetLock serialises the network driver's list+choose+create and the
// sidecar driver's making of an egress network. The in-process semaphore
// keeps goroutines from spinning on the file lock; the flock covers other
// processes, and other driver values in this one (each Acquire opens the
// file anew, and flock locks belong to the open file).
type SubnetLock struct {
	path string
	sem  chan struct{}
}

// NewSubnetLock returns the lock on the file at path.
func NewSubnetLock(path string) *SubnetLock {
	return &SubnetLock{path: path, sem: make(chan struct{}, 1)}
}

// Acquire blocks until the lock is held or ctx ends, and returns the release.
func (l *SubnetLock) Acquire(ctx context.Context) (func(), error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for subnet lock %s: %w", l.path, ctx.Err())
	}
	f, err := l.lockFile(ctx)
	if err != nil {
		<-l.sem
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		<-l.sem
	}, nil
}

func (l *SubnetLock) lockFile(ctx context.Context) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return nil, fmt.Errorf("create subnet lock directory: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open subnet lock: %w", err)
	}
	// Poll a non-blocking flock so a cancelled ctx is honoured; a blocking
	// flock cannot be interrupted.
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", l.path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for subnet lock %s: %w", l.path, ctx.Err())
		case <-time.After(delay):
		}
	}
}
