package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw/hostfwtest"
	"github.com/bottle-reconcile/bottle-reconcile/internal/watchlog"
)

// TestWatchHealPutsRulesBack: a heal's pass looks at its bottle alone, on
// the real host firewall: rules removed behind the watcher's back are back
// once the heal has thawed the guest, with no pass over every bottle in
// between (the resync is an hour away), and the guest never ran without
// them. With no event at all, a pass over every bottle (here a SIGHUP)
// puts them back.
func TestWatchHealPutsRulesBack(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables on the host")
	}
	e := newEnv(t)
	e.write("w", bottleSpec{Extra: "  guest: docker\n"})
	e.mustOnce()
	name := e.name("w")
	comment := "bottle-reconcile " + e.instance + " " + name
	isGuests := func(c string) bool { return c == comment }
	installed := hostfwtest.HostRules(t, isGuests)
	if len(installed) == 0 {
		t.Fatalf("no host firewall rules commented %q after the first pass", comment)
	}

	w := e.start(nil, "", "--resync", "1h", e.specs)
	passes := func(reason string) []watchlog.Pass { return watchlog.Passes(w.err.String(), reason) }
	waitFor(t, time.Minute, "the watcher's first pass", func() bool { return len(passes("start")) > 0 })

	hostfwtest.DeleteHostRules(t, installed)
	if out, err := exec.Command("docker", "kill", bundleName(name)).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v: %s", err, out)
	}
	waitFor(t, 30*time.Second, "the heal of the killed bundle", func() bool {
		ps := passes("docker die")
		return len(ps) > 0 && ps[0].Ops > 0
	})
	if p := passes("docker die")[0]; p.Scope != name {
		t.Errorf("the heal's pass looked at %q, want its bottle %q alone", p.Scope, name)
	}
	for _, p := range passes("")[1:] { // after the first, every pass looked at this bottle alone
		if p.Scope == "" {
			t.Fatalf("a pass over every bottle (%s) ran during the heal; the test proves nothing", p.Trigger)
		}
	}
	if got := hostfwtest.HostRules(t, isGuests); !slices.Equal(got, installed) {
		t.Errorf("after the heal the guest has rules\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(installed, "\n"))
	}
	if c := e.inspect(guestName(name) + "-guest"); c.State == nil || !c.State.Running || c.State.Paused {
		t.Errorf("the guest is not running after the heal: %+v", c.State)
	}

	hostfwtest.DeleteHostRules(t, installed)
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the rules back after a pass over every bottle", func() bool {
		return slices.Equal(hostfwtest.HostRules(t, isGuests), installed)
	})
}
