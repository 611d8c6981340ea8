package bottle

import "context"

// A watcher's pass that a runtime event about one bottle started (its
// bundle died, say) needs to look at that bottle alone: nothing else told of
// a change, and the resync pass still looks at everything. Observing 250
// bottles to heal one costs a heal hundreds of milliseconds and competes
// with the runtime it waits on. Such a pass carries its bottle in its
// context; an Observe may then narrow its one list call to that bottle (a
// label filter), and the reconciler keeps only that bottle's resources of
// whatever comes back, so a driver that cannot narrow stays correct.

type scopeKey struct{}

// WithScope returns a context whose observations concern bottle alone.
func WithScope(ctx context.Context, bottle string) context.Context {
	return context.WithValue(ctx, scopeKey{}, bottle)
}

// ScopeOf returns the one bottle ctx's observation concerns, or "" for
// every bottle.
func ScopeOf(ctx context.Context) string {
	s, _ := ctx.Value(scopeKey{}).(string)
	return s
}
