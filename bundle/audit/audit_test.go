package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecordWritesOneLinePerDecision(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	l := New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), "b1")
	l.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Record(Decision{Daemon: "egress", Client: "c", Method: "CONNECT", Target: "a.test:443", Verdict: Deny, Reason: "r"})
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50", len(lines))
	}
	for _, line := range lines {
		var d Decision
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if d.Bottle != "b1" || !d.Time.Equal(l.now()) || d.Verdict != Deny {
			t.Errorf("decoded %+v, want bottle and time filled in", d)
		}
	}
	var nilLog *Log
	nilLog.Record(Decision{}) // must not panic
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
