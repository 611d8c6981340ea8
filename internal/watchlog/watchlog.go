// Package watchlog reads a watcher's JSON log back, for the tests that run
// the real binary in watch mode.
package watchlog

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// Buffer is a reconciler process's output (its stdout or its log), which
// a test reads while the process writes it.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Pass is what a watcher's "pass" log line says (reconciler/watch.go).
type Pass struct {
	Msg, Trigger string
	Ops          int
	Scope        string // the one bottle a scoped pass looked at
}

// Passes returns each "pass" line of log whose trigger names reason, or
// every one for "", in log order.
func Passes(log, reason string) []Pass {
	var out []Pass
	for _, l := range strings.Split(log, "\n") {
		var p Pass
		if json.Unmarshal([]byte(l), &p) == nil && p.Msg == "pass" && (reason == "" || slices.Contains(strings.Split(p.Trigger, ","), reason)) {
			out = append(out, p)
		}
	}
	return out
}
