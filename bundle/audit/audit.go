// Package audit writes the bundle's decision log: one JSON object per line
// for every egress request and DNS query a daemon allows or denies.
package audit

import (
	"encoding/json"
	"io"
	"sync"
	"time"
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
}

// Log writes Decisions as JSON lines. The zero value and a nil *Log discard.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	bottle string
	now    func() time.Time
	skip   func(client string) bool
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
	b, err := json.Marshal(d)
	if err != nil {
		return
	}
	b = append(b, '\n')
	// One Write per line so lines from concurrent daemons never interleave.
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}
