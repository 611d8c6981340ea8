package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Record(Decision{Daemon: "egress", Client: "c", Method: "CONNECT", Target: fmt.Sprintf("a%d.test:443", i), Verdict: Deny, Reason: "r"})
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

// A guest repeating a denied request makes one line, then one counted line
// per RepeatWindow, not a line per attempt; anything else ends the run.
func TestRepeatedDenialsAreCounted(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "b1")
	deny := func(target, client string) {
		l.Record(Decision{Daemon: "egress", Client: client, Method: "CONNECT", Target: target, Verdict: Deny, Reason: "not allowed"})
	}
	for i := range 1000 {
		deny("evil.test:443", fmt.Sprintf("10.0.0.3:%d", 40000+i)) // a new connection each time
	}
	deny("other.test:443", "10.0.0.3:1") // ends the run
	l.Record(Decision{Daemon: "egress", Client: "10.0.0.3:2", Target: "ok.test:443", Verdict: Allow})
	l.Record(Decision{Daemon: "egress", Client: "10.0.0.3:3", Target: "ok.test:443", Verdict: Allow}) // allows are never counted
	l.Flush()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var d Decision
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s x%d", d.Verdict, d.Target, d.Repeated))
	}
	want := []string{"deny evil.test:443 x0", "deny evil.test:443 x999", "deny other.test:443 x0", "allow ok.test:443 x0", "allow ok.test:443 x0"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if buf.Len() > 2000 {
		t.Errorf("%d bytes for 1000 repeats of one denial", buf.Len())
	}
}

// A run is written out RepeatWindow after it began, without waiting for
// the next decision.
func TestRepeatedDenialsFlushOnTheirOwn(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	l := New(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) }), "b1")
	for range 3 {
		l.Record(Decision{Daemon: "dns", Client: "10.0.0.3:53000", Target: "evil.test", Verdict: Deny, Reason: "not allowed"})
	}
	deadline := time.Now().Add(RepeatWindow + 2*time.Second)
	for {
		mu.Lock()
		out := buf.String()
		mu.Unlock()
		if strings.Contains(out, `"repeated":2`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no counted line within %s:\n%s", RepeatWindow+2*time.Second, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every text field is capped: a 32 KiB target costs the host a few hundred
// bytes, not 32 KiB (or three times that).
func TestFieldsAreCapped(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "b1")
	huge := strings.Repeat("é", 16<<10) + ":443"
	l.Record(Decision{Daemon: "egress", Client: "10.0.0.3:1", Method: strings.Repeat("M", 5000), Target: huge, Verdict: Deny, Reason: "bad target " + huge})
	if buf.Len() > 4*MaxField+512 {
		t.Errorf("a line of %d bytes for a %d-byte target", buf.Len(), len(huge))
	}
	var d Decision
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Target, "more bytes)") || !strings.HasPrefix(d.Target, "éé") {
		t.Errorf("target not cut readably: %.80q", d.Target)
	}
}
