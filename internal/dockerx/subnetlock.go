package dockerx

import (
	"context"
	"fmt"

	"github.com/bottle-reconcile/bottle-reconcile/internal/flock"
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
	f, err := flock.Open(l.path, 0o755)
	if err == nil {
		if err = f.Lock(ctx); err != nil {
			f.Close()
		}
	}
	if err != nil {
		<-l.sem
		return nil, fmt.Errorf("subnet lock: %w", err)
	}
	return func() {
		f.Close() // closing the file drops the flock
		<-l.sem
	}, nil
}
