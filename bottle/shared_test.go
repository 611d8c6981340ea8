package bottle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestShared(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		shared    bool
		err       error
		wantCalls int32
	}{
		{"one call per key in a pass", true, nil, 1},
		{"the error is shared too", true, boom, 1},
		{"outside a pass every caller calls", false, nil, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.shared {
				ctx = WithShared(ctx)
			}
			var calls atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					v, err := Shared(ctx, "k", func(context.Context) ([]int, error) {
						calls.Add(1)
						return []int{1, 2}, tt.err
					})
					if !errors.Is(err, tt.err) || len(v) != 2 {
						t.Errorf("Shared = %v, %v", v, err)
					}
				})
			}
			wg.Wait()
			if calls.Load() != tt.wantCalls {
				t.Errorf("fn called %d times, want %d", calls.Load(), tt.wantCalls)
			}
		})
	}
	// Keys are apart.
	ctx := WithShared(context.Background())
	a, _ := Shared(ctx, "a", func(context.Context) (string, error) { return "A", nil })
	b, _ := Shared(ctx, "b", func(context.Context) (string, error) { return "B", nil })
	if a != "A" || b != "B" {
		t.Errorf("keys mixed: %q %q", a, b)
	}
}
