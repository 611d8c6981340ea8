// Package audit writes the bundle's decision log: one JSON object per line
// for every egress request and DNS query a daemon allows or denies.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// Verdicts.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Decision is one line of the decision log. It never carries header values
// or bodies, which may hold credentials.
type Decision struct {
	Time    time.Time `json:"time"`
	Bottle  string    `json:"bottle"`
	Daemon  string    `json:"daemon"`
	Client  string    `json:"client"`
	Method  string    `json:"method"`
	Target  string    `json:"target"`
	Verdict string    `json:"verdict"`
	Reason  string    `json:"reason"`
	// Addr is the address the daemon dialled or answered with, if any.
	Addr string `json:"addr,omitempty"`
	// Status is the HTTP status or DNS rcode sent to the client.
	Status int `json:"status,omitempty"`
	// Repeated counts the denials just like this one (same daemon, client
	// address, target and reason) that came after it and were not written
	// out one by one; this line stands for them, at the time of the last.
	Repeated int `json:"repeated,omitempty"`
}

// MaxField bounds each text field of a line: a guest chooses targets and
// so the size of what the host stores. What is cut says by how much.
const MaxField = 256

// RepeatWindow is how long a run of identical denials is counted rather
// than written: at most one counted line per run per window.
const RepeatWindow = time.Second

// Log writes Decisions as JSON lines. The zero value and a nil *Log discard.
//
// A guest that repeats a denied request cannot make the host store one line
// per attempt: after the first, identical denials are counted and written
// as one line with Repeated set, when the run ends (another decision comes)
// or RepeatWindow after it began, whichever is first.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	bottle string
	now    func() time.Time
	skip   func(client string) bool

	// The run of identical denials being counted, if any.
	run      *Decision
	runKey   string
	runTimer *time.Timer
}

// Skip leaves out decisions whose Client skip names: the bundle's own
// self-checks. Call it before the Log is used.
func (l *Log) Skip(skip func(client string) bool) { l.skip = skip }

// New returns a Log writing to w, stamping every line with bottle.
func New(w io.Writer, bottle string) *Log {
	return &Log{w: w, bottle: bottle, now: time.Now}
}

// Record writes d as one line. Time and Bottle are filled in when empty.
// Write errors are dropped: a full or closed log must not stall traffic
// decisions, and there is nowhere better to report them.
func (l *Log) Record(d Decision) {
	if l == nil || l.w == nil || (l.skip != nil && l.skip(d.Client)) {
		return
	}
	if d.Time.IsZero() {
		d.Time = l.now().UTC()
	}
	if d.Bottle == "" {
		d.Bottle = l.bottle
	}
	for _, f := range []*string{&d.Client, &d.Method, &d.Target, &d.Reason, &d.Addr} {
		*f = capField(*f)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := ""
	if d.Verdict == Deny {
		key = d.Daemon + "\x00" + clientHost(d.Client) + "\x00" + d.Target + "\x00" + d.Reason
	}
	if l.run != nil && key != "" && key == l.runKey {
		l.run.Repeated++
		l.run.Time = d.Time
		return
	}
	l.flushLocked()
	l.write(d)
	if key != "" {
		// The next identical denial starts a counted run.
		l.run, l.runKey = &Decision{}, key
		*l.run = d
		l.runTimer = time.AfterFunc(RepeatWindow, l.Flush)
	}
}

// Flush writes the counted run of denials, if it counted any. A bundle
// calls it before it exits.
func (l *Log) Flush() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *Log) flushLocked() {
	if l.run == nil {
		return
	}
	if l.run.Repeated > 0 {
		l.write(*l.run)
	}
	l.runTimer.Stop()
	l.run, l.runKey, l.runTimer = nil, "", nil
}

// write writes d as one line; the caller holds mu, so lines from
// concurrent daemons never interleave.
func (l *Log) write(d Decision) {
	b, err := json.Marshal(d)
	if err != nil {
		return
	}
	_, _ = l.w.Write(append(b, '\n'))
}

// capField cuts s to MaxField bytes (on a rune boundary), saying how much
// was cut.
func capField(s string) string {
	if len(s) <= MaxField {
		return s
	}
	cut := MaxField - 32
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d more bytes)", s[:cut], len(s)-cut)
}

// clientHost is a client address without its port: a guest opening a new
// connection per attempt still repeats itself.
func clientHost(client string) string {
	if h, _, err := net.SplitHostPort(client); err == nil {
		return h
	}
	return client
}
