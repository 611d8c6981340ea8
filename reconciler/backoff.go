package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// Backoff is the per-bottle retry policy of a watcher: a bottle that failed
// n passes in a row is not worked on again for Base·2^(n-1), at most Max.
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff waits 1 s after a first failure and never more than 5 min:
// long enough not to hammer a broken runtime, short enough that a fixed
// cause is noticed without anyone restarting anything.
var DefaultBackoff = Backoff{Base: time.Second, Max: 5 * time.Minute}

// Delay is how long to wait after the given number of consecutive failures.
func (b Backoff) Delay(failures int) time.Duration {
	if failures < 1 {
		return 0
	}
	d := b.Base
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// passSchedule is what a Watcher adds to a pass before Apply. A nil
// *passSchedule (a --once pass) orders nothing and records no retry time.
type passSchedule struct {
	order   []string        // bottles the executor starts first
	stop    <-chan struct{} // closed on shutdown: no new operation starts
	resets  map[string]bool // bottles whose spec changed: failures start over
	backoff Backoff
}

func (s *passSchedule) reset(bottle string) bool { return s != nil && s.resets[bottle] }

// retryAt is when a bottle that has now failed this many times is retried.
func (s *passSchedule) retryAt(failures int, now time.Time) *time.Time {
	if s == nil {
		return nil
	}
	t := now.UTC().Add(s.backoff.Delay(failures))
	return &t
}

// fingerprint identifies what a bottle's spec asks for: a new fingerprint
// is a new attempt, so its backoff is reset and it goes ahead of a resync.
// It covers the three role hashes and the facts the hashes leave out. It is
// recorded in the bottle's status, so a spec changed while no watcher ran
// still resets the backoff.
func fingerprint(db *DesiredBottle) string {
	var b strings.Builder
	for _, r := range bottle.Roles {
		b.WriteString(db.hash(r))
		b.WriteByte('/')
	}
	subnet := ""
	if db.Subnet != (netip.Prefix{}) {
		subnet = db.Subnet.String()
	}
	b.WriteString(subnet + "/" + db.GuestKind + "/" + strconv.FormatBool(db.Spec.Suspend) + "/" + strconv.FormatBool(db.Spec.Protect))
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:12])
}
