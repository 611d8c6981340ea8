package probe

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// liar is a guest helper that reports every blocked path blocked and every
// control working, whatever it does: it sends what to the host canaries.
type liar struct {
	// send picks the checks it really carries out (from the host, where
	// every path is open) and what it sends; nil sends nothing.
	send func(c Check) (addr, msg string, ok bool)
}

func (l liar) install(context.Context, string) ([]string, error) { return []string{"/tmp/runner"}, nil }
func (l liar) String() string                                    { return "lying guest" }

func (l liar) run(_ context.Context, argv []string) ([]byte, error) {
	var p Plan
	if err := json.Unmarshal([]byte(argv[len(argv)-1]), &p); err != nil {
		return nil, err
	}
	var out Output
	for _, c := range p.Checks {
		if l.send != nil {
			if addr, msg, ok := l.send(c); ok {
				if conn, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
					io.WriteString(conn, msg)
					conn.(*net.TCPConn).CloseWrite()
					io.ReadAll(conn)
					conn.Close()
				}
			}
		}
		out.Observations = append(out.Observations, Observation{ID: c.ID, Reached: c.Expect == Allowed, Observed: "refused"})
	}
	return json.Marshal(out)
}

// TestLyingGuestFails: a guest that reports "blocked" while it reaches a
// host canary fails the probe, on the host's word; a guest that reaches
// nothing passes; another run's traffic does not count.
func TestLyingGuestFails(t *testing.T) {
	const ownLoopback = "127.0.0.1 canary port from the guest's own loopback"
	get := func(mark string) string { return "GET /" + mark + " HTTP/1.0\r\n\r\n" }
	tests := []struct {
		name   string
		send   func(Check) (string, string, bool)
		pass   bool
		failID string // the result that must fail, and why
		why    string
	}{
		{name: "honest and quiet", pass: true},
		// The guest's own-loopback check carried out for real: on the
		// host it reaches the loopback canary.
		{name: "connects to the loopback canary, reports blocked", send: func(c Check) (string, string, bool) {
			return c.Addr, get(c.Mark), c.Name == ownLoopback
		}, failID: "2.13", why: "guest reports blocked, but the host loopback canary received 1 connection"},
		{name: "connects and sends nothing", send: func(c Check) (string, string, bool) {
			return c.Addr, "", c.Name == ownLoopback
		}, failID: "2.13", why: "guest reports blocked, but the host loopback canary received 1 connection"},
		{name: "connects where no check aims", send: func(c Check) (string, string, bool) {
			// The any-address canary's port, at 127.0.0.1.
			_, port, _ := net.SplitHostPort(c.Addr)
			return "127.0.0.1:" + port, get(c.Mark), c.Name == "host 10.218.0.1 canary direct"
		}, failID: "2.99", why: "host canary at 127.0.0.1: 1"},
		{name: "another run's traffic", send: func(c Check) (string, string, bool) {
			return c.Addr, get(markPrefix + "0123456789abcdef"), c.Name == ownLoopback
		}, pass: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := testTarget()
			tg.HostAddrs, tg.PublicAddrs, tg.Peers, tg.Rebind = nil, nil, nil, nil
			results, err := runIn(context.Background(), Options{Timeout: time.Minute}, tg, liar{send: tt.send})
			if err != nil {
				t.Fatal(err)
			}
			if got := Passed(results); got != tt.pass {
				t.Errorf("Passed = %v, want %v:\n%s", got, tt.pass, table(results))
			}
			if tt.failID == "" {
				return
			}
			for _, r := range results {
				if r.ID == tt.failID {
					if r.Verdict != Fail || !strings.Contains(r.Detail, tt.why) {
						t.Errorf("result %s = %+v, want it failed saying %q", r.ID, r, tt.why)
					}
					return
				}
			}
			t.Errorf("no result %s:\n%s", tt.failID, table(results))
		})
	}
}

func table(rs []Result) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.ID + " " + r.Verdict + " " + r.Name + ": " + r.Observed + " " + r.Detail + "\n")
	}
	return b.String()
}
