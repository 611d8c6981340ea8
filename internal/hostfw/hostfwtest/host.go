package hostfwtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
)

// HostRules returns the rules of the host's real IPv4 filter table whose
// comment keep accepts, each as iptables-save prints it after "-A " (the
// chain, then the rule), in the table's order: for tests that look at, or
// take away behind a driver's back, the rules it installed.
func HostRules(t testing.TB, keep func(comment string) bool) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var rs []string
	for _, l := range strings.Split(string(out), "\n") {
		r, ok := strings.CutPrefix(l, "-A ")
		if !ok {
			continue
		}
		args, err := hostfw.SplitArgs(r)
		if err != nil {
			t.Fatalf("iptables-save printed %q: %v", l, err)
		}
		if keep(hostfw.CommentOf(args)) {
			rs = append(rs, r)
		}
	}
	return rs
}

// DeleteHostRules deletes rules as HostRules returns them from the host's
// real filter table, one iptables -D each.
func DeleteHostRules(t testing.TB, rules []string) {
	t.Helper()
	for _, r := range rules {
		args, err := hostfw.SplitArgs(r)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("iptables", append([]string{"-w", "-D"}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("iptables -D %s: %v: %s", r, err, out)
		}
	}
}
