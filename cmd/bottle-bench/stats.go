package main

import (
	"slices"
	"sync"
	"time"
)

// summary is a set of samples reduced to what the table shows.
type summary struct {
	Median  time.Duration
	Min     time.Duration
	Max     time.Duration
	Samples []time.Duration
}

// summarize returns the median, min and max of ds; the zero summary for
// none. The median of an even count is the mean of the middle two.
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{Median: m, Min: s[0], Max: s[len(s)-1], Samples: slices.Clone(ds)}
}

// opTimer collects the durations of named operations from many goroutines.
type opTimer struct {
	mu    sync.Mutex
	order []string
	ds    map[string][]time.Duration
}

func newOpTimer() *opTimer { return &opTimer{ds: map[string][]time.Duration{}} }

// time runs f and records how long it took under op, failed or not.
func (t *opTimer) time(op string, f func() error) error {
	start := time.Now()
	err := f()
	t.add(op, time.Since(start))
	return err
}

// add records one operation that took d.
func (t *opTimer) add(op string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.ds[op]; !ok {
		t.order = append(t.order, op)
	}
	t.ds[op] = append(t.ds[op], d)
}

// opStat is the mean of one kind of operation.
type opStat struct {
	Op    string
	Count int
	Mean  time.Duration
}

// stats returns each operation's mean, in the order first seen.
func (t *opTimer) stats() []opStat {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]opStat, 0, len(t.order))
	for _, op := range t.order {
		ds := t.ds[op]
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		out = append(out, opStat{Op: op, Count: len(ds), Mean: sum / time.Duration(len(ds))})
	}
	return out
}
