package bottle

import (
	"context"
	"sync"
)

// A pass observes every driver at once. Drivers that read the same runtime
// listing (the bundle and docker-guest drivers both list Docker
// containers) share one call per pass through Shared, so a pass costs one
// list per resource kind, not one per driver.

type sharedKey struct{}

// sharedCalls holds the results of one pass's shared calls, by key.
type sharedCalls struct {
	mu sync.Mutex
	m  map[string]*sharedCall
}

type sharedCall struct {
	done chan struct{}
	v    any
	err  error
}

// WithShared returns a context whose Shared calls are made once each. The
// reconciler gives one to every pass's observation.
func WithShared(ctx context.Context) context.Context {
	return context.WithValue(ctx, sharedKey{}, &sharedCalls{m: map[string]*sharedCall{}})
}

// Shared returns fn's result, calling fn only for the first caller of key
// under a WithShared context; the others wait for that call and get the
// same result, error included. Without WithShared it calls fn. fn's
// result is shared, so callers must not change it.
func Shared[T any](ctx context.Context, key string, fn func(context.Context) (T, error)) (T, error) {
	s, _ := ctx.Value(sharedKey{}).(*sharedCalls)
	if s == nil {
		return fn(ctx)
	}
	s.mu.Lock()
	c, ok := s.m[key]
	if !ok {
		c = &sharedCall{done: make(chan struct{})}
		s.m[key] = c
	}
	s.mu.Unlock()
	if !ok {
		c.v, c.err = fn(ctx)
		close(c.done)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	v, _ := c.v.(T)
	return v, c.err
}
