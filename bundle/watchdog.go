package bundle

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// WatchdogInterval is how often the bundle checks its own daemons. A
// daemon that fails stops the bundle at once; this catches one that hangs
// (a stuck accept loop, a deadlock) within two intervals. A check is a few
// in-process round trips, about 5 ms of CPU, where a Docker health check
// would cost a runc exec and a new process per bundle per check.
const WatchdogInterval = time.Minute

// watchdogTimeout bounds one probe; watchdogFailures probes in a row must
// fail before the bundle gives up, so one slow moment under load is not a
// death.
const (
	watchdogTimeout  = 10 * time.Second
	watchdogFailures = 2
)

// probe asks one daemon a question it answers without going upstream, and
// returns nil once it answered, whatever the answer.
type probe struct {
	name string
	ask  func(ctx context.Context, quiet *quietSet) error
}

// watch probes every daemon each interval until ctx ends, and returns an
// error naming the daemon that failed watchdogFailures probes in a row.
func watch(ctx context.Context, interval time.Duration, quiet *quietSet, ps []probe) error {
	failures := map[string]int{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, p := range ps {
			pctx, cancel := context.WithTimeout(ctx, watchdogTimeout)
			err := p.ask(pctx, quiet)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				failures[p.name] = 0
				continue
			}
			if failures[p.name]++; failures[p.name] >= watchdogFailures {
				return fmt.Errorf("bundle: watchdog: %s did not answer %d checks in a row: %w", p.name, failures[p.name], err)
			}
		}
	}
}

// probes returns the checks for the daemons bound at addrs (by role).
func probes(addrs map[string]string) []probe {
	var out []probe
	if a := addrs[DaemonEgress]; a != "" {
		out = append(out, probe{DaemonEgress, func(ctx context.Context, q *quietSet) error { return askProxy(ctx, q, a) }})
	}
	if a := addrs[DaemonDNS]; a != "" {
		out = append(out,
			probe{DaemonDNS + "/udp", func(ctx context.Context, q *quietSet) error { return askDNS(ctx, q, "udp", a) }},
			probe{DaemonDNS + "/tcp", func(ctx context.Context, q *quietSet) error { return askDNS(ctx, q, "tcp", a) }})
	}
	if a := addrs["control"]; a != "" {
		out = append(out, probe{"control", func(ctx context.Context, _ *quietSet) error { return Health(ctx, a) }})
	}
	return out
}

// watchdogName is what the probes ask for: a name under .invalid, which no
// allowlist can hold, so the answer never needs the upstream.
const watchdogName = "bottle-watchdog.invalid"

// askProxy sends the proxy a request it refuses itself and reads the
// status line of the refusal.
func askProxy(ctx context.Context, q *quietSet, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	q.add(local)
	defer q.remove(local)
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", watchdogName, watchdogName); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.") {
		return fmt.Errorf("egress answered %q, not HTTP", strings.TrimSpace(line))
	}
	return nil
}

// askDNS sends the resolver a query it refuses itself.
func askDNS(ctx context.Context, q *quietSet, network, addr string) error {
	c := &dns.Client{Net: network}
	conn, err := c.DialContext(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	q.add(local)
	defer q.remove(local)
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	m := new(dns.Msg)
	m.SetQuestion(watchdogName+".", dns.TypeA)
	if _, _, err := c.ExchangeWithConnContext(ctx, m, conn); err != nil {
		return err
	}
	return nil
}

// quietSet holds the local addresses of the watchdog's probes in flight,
// so the decision log leaves them out: they are the bundle talking to
// itself, from ports no guest can hold while they are open.
type quietSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func newQuietSet() *quietSet { return &quietSet{m: map[string]bool{}} }

func (q *quietSet) add(a string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.m[a] = true
}

func (q *quietSet) remove(a string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.m, a)
}

// has reports whether client is one of the watchdog's probes.
func (q *quietSet) has(client string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.m[client]
}
