// Package audittest holds what the daemons' tests share to read the
// decision log back.
package audittest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
)

// Buffer is a decision log's writer that tests read back; it is safe for
// concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Decisions parses the log, failing on any line that is not a complete
// decision.
func (s *Buffer) Decisions(t testing.TB) []audit.Decision {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Decision
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		for _, k := range []string{"time", "bottle", "daemon", "client", "method", "target", "verdict", "reason"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line lacks %q: %s", k, line)
			}
		}
		var d audit.Decision
		_ = json.Unmarshal([]byte(line), &d)
		out = append(out, d)
	}
	return out
}

// Last returns the last decision logged.
func (s *Buffer) Last(t testing.TB) audit.Decision {
	t.Helper()
	ds := s.Decisions(t)
	if len(ds) == 0 {
		t.Fatal("the decision log is empty")
	}
	return ds[len(ds)-1]
}
