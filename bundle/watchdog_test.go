package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
)

func TestWatch(t *testing.T) {
	fail := errors.New("no answer")
	tests := []struct {
		name    string
		answers []error // one per check; nil after the end
		wantErr string
	}{
		{name: "answers every check", answers: nil},
		{name: "one miss is forgiven", answers: []error{fail, nil, fail, nil}},
		{name: "two misses in a row stop the bundle", answers: []error{nil, fail, fail}, wantErr: "egress did not answer 2 checks in a row: no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			p := probe{name: "egress", ask: func(context.Context, *quietSet) error {
				i := int(n.Add(1)) - 1
				if i < len(tt.answers) {
					return tt.answers[i]
				}
				return nil
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := watch(ctx, 5*time.Millisecond, newQuietSet(), []probe{p})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("watch = %v, want nil at the end of ctx", err)
				}
				if int(n.Load()) <= len(tt.answers) {
					t.Fatalf("only %d checks ran", n.Load())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("watch = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// A daemon that accepts but never answers fails its probe within the
// probe's deadline: that is the hang the watchdog exists for.
func TestProbesCatchAHang(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close() // reads nothing, answers nothing
	addrs := map[string]string{DaemonEgress: ln.Addr().String(), DaemonDNS: pc.LocalAddr().String()}
	for _, p := range probes(addrs) {
		if p.name == DaemonDNS+"/tcp" {
			continue // nothing listens on TCP here
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		err := p.ask(ctx, newQuietSet())
		cancel()
		if err == nil {
			t.Errorf("%s: probe of a hung daemon succeeded", p.name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: probe took %s, past its deadline", p.name, d)
		}
	}
}

// Against the real daemons every probe succeeds, the bundle keeps running
// through many checks, and none of them reaches the decision log.
func TestWatchdogOnRealDaemons(t *testing.T) {
	cfg := Config{
		Bottle:   "b1",
		Daemons:  []string{DaemonEgress, DaemonDNS},
		Listen:   netip.MustParseAddr("127.0.0.1"),
		Upstream: fakeUpstream(t),
	}
	addrs, out := startRunWith(t, cfg, runOptions{watchdog: 10 * time.Millisecond})
	waitHealthy(t, addrs["control"])
	for _, p := range probes(addrs) {
		if err := p.ask(context.Background(), newQuietSet()); err != nil {
			t.Errorf("%s probe: %v", p.name, err)
		}
	}
	// Those direct probes were not quiet, so they are logged (identical
	// denials as one counted line, written once the run's window ends);
	// the watchdog's own are not.
	time.Sleep(audit.RepeatWindow + 300*time.Millisecond)
	n := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, watchdogName) {
			var d audit.Decision
			if err := json.Unmarshal([]byte(l), &d); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			n += max(1, d.Repeated) // a counted line stands for its repeats
		}
	}
	if n != 3 {
		t.Errorf("decision log has %d lines naming %s, want the 3 direct probes only:\n%s", n, watchdogName, out)
	}
}

func TestReadyLine(t *testing.T) {
	var b bytes.Buffer
	writeReady(&b, map[string]string{"egress": "10.0.0.2:3128"})
	if got := b.String(); got != ReadyLine+" {\"egress\":\"10.0.0.2:3128\"}\n" || !IsReady(got) {
		t.Fatalf("ready line %q", got)
	}
	if IsReady("bottle-bundle starting") {
		t.Fatal("IsReady accepts another line")
	}
}
