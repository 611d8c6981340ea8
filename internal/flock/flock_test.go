package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// open opens path for the test and closes it when the test ends.
func open(t *testing.T, path string) *File {
	t.Helper()
	l, err := Open(path, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Two opens of one path exclude each other, and the lock comes free when
// its holder unlocks or closes the file.
func TestTryLock(t *testing.T) {
	for _, tt := range []struct {
		name    string
		release func(*File) error // what the first holder does before the second tries again
	}{
		{"unlock", (*File).Unlock},
		{"close", (*File).Close},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a", "b", "lock") // directories made on open
			first, second := open(t, path), open(t, path)
			if err := first.TryLock(); err != nil {
				t.Fatalf("first TryLock() = %v", err)
			}
			if err := second.TryLock(); !errors.Is(err, ErrHeld) {
				t.Fatalf("second TryLock() while held = %v, want ErrHeld", err)
			}
			if err := tt.release(first); err != nil {
				t.Fatal(err)
			}
			if err := second.TryLock(); err != nil {
				t.Fatalf("second TryLock() after %s = %v, want the lock", tt.name, err)
			}
			if err := first.TryLock(); tt.name == "unlock" && !errors.Is(err, ErrHeld) {
				t.Errorf("first TryLock() while the second holds it = %v, want ErrHeld", err)
			}
		})
	}
}

// waitingCtx tells, by closing waiting, that Lock has found the lock held
// and waits: the first call of Done comes only then.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

func TestLock(t *testing.T) {
	cancelled, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("the caller gave up")
	cancel(stop)
	for _, tt := range []struct {
		name    string
		held    bool
		ctx     context.Context
		release bool // the holder unlocks while Lock waits
		want    error
	}{
		{"free", false, context.Background(), false, nil},
		{"free with an ended context", false, cancelled, false, nil},
		{"held, then released", true, context.Background(), true, nil},
		{"held, context ended", true, cancelled, false, stop},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lock")
			holder, waiter := open(t, path), open(t, path)
			if tt.held {
				if err := holder.TryLock(); err != nil {
					t.Fatal(err)
				}
			}
			ctx := &waitingCtx{Context: tt.ctx, waiting: make(chan struct{})}
			done := make(chan error, 1)
			go func() { done <- waiter.Lock(ctx) }()
			var err error
			if tt.release {
				select {
				case <-ctx.waiting: // the first try found it held
				case err = <-done:
					t.Fatalf("Lock() = %v before the holder let go", err)
				}
				if err := holder.Unlock(); err != nil {
					t.Fatal(err)
				}
			}
			err = <-done
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Lock() = %v, want %v", err, tt.want)
			}
			// Whoever should hold the lock now does.
			if err := holder.TryLock(); (tt.want == nil) != errors.Is(err, ErrHeld) {
				t.Errorf("the other's TryLock() after Lock() = %v", err)
			}
		})
	}
}

func TestOpenFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A file where the directory should be.
	if _, err := Open(filepath.Join(file, "lock"), 0o700); err == nil {
		t.Error("Open() under a regular file succeeded")
	}
}
