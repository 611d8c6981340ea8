package dockerguest

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
)

// Chains of the host's filter table that the driver uses.
const (
	// Chain holds every docker guest's rules. INPUT and DOCKER-USER jump to
	// it first, so nothing another tool puts in those chains runs before it.
	Chain = "BOTTLE-GUESTS"

	chainInput      = "INPUT"
	chainForward    = "FORWARD"
	chainDockerUser = "DOCKER-USER"
)

// commentPrefix starts the comment of every guest rule; the rest is
// "<instance> <bottle>", which is how the rules are found again.
const commentPrefix = "bottle-reconcile "

// guestRules is what decides the host firewall rules of one guest.
type guestRules struct {
	Instance, Bottle string
	Guest, Bundle    netip.Addr
	Egress, DNS      bool // the bundle daemons the guest may reach
}

// Comment is the label that the guest's rules carry.
func (g guestRules) Comment() string { return ruleComment(g.Instance, g.Bottle) }

func ruleComment(instance, bottle string) string { return commentPrefix + instance + " " + bottle }

// Rules returns the guest's rules in chain order, each as the argument list
// that follows "-A BOTTLE-GUESTS". They are written exactly as iptables-save
// prints them back (/32 masks, "-m tcp" after "-p tcp", RELATED before
// ESTABLISHED), so what is installed and what is read compare as equal.
func (g guestRules) Rules() [][]string {
	src := []string{"-s", g.Guest.String() + "/32"}
	bun := g.Bundle.String() + "/32"
	tag := []string{"-m", "comment", "--comment", g.Comment()}
	rule := func(parts ...[]string) []string { return slices.Concat(parts...) }
	port := func(proto string, p int) []string {
		return []string{"-d", bun, "-p", proto, "-m", proto, "--dport", strconv.Itoa(p)}
	}
	accept := []string{"-j", "ACCEPT"}

	// Replies to connections the guest did not open (ctdir REPLY): a
	// connection the guest opened before its rules were in place does not
	// get through once they are back.
	rs := [][]string{rule(src, []string{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "--ctdir", "REPLY"}, tag, accept)}
	if g.Egress {
		rs = append(rs, rule(src, port("tcp", bundle.ProxyPort), tag, accept))
	}
	if g.DNS {
		rs = append(rs,
			rule(src, port("udp", bundle.DNSPort), tag, accept),
			rule(src, port("tcp", bundle.DNSPort), tag, accept))
	}
	// Refusals, not drops: a blocked connect fails at once instead of
	// hanging until a timeout.
	rs = append(rs,
		rule(src, []string{"-p", "tcp"}, tag, []string{"-j", "REJECT", "--reject-with", "tcp-reset"}),
		rule(src, tag, []string{"-j", "REJECT", "--reject-with", "icmp-admin-prohibited"}),
		// Nothing but the bundle opens connections to the guest through
		// the host (the host's own connections leave by OUTPUT).
		rule([]string{"!", "-s", bun, "-d", g.Guest.String() + "/32"}, tag, []string{"-j", "REJECT", "--reject-with", "icmp-admin-prohibited"}),
	)
	return rs
}

// jump is the rule that sends a base chain's traffic to Chain.
var jump = []string{"-j", Chain}

// toDockerUser is Docker's own jump from FORWARD to DOCKER-USER.
var toDockerUser = []string{"-j", chainDockerUser}

// tagged returns Chain's rules that carry comment c, in order.
func tagged(t hostfw.Table, c string) [][]string { return t.Tagged(Chain, c) }

// baseDrift says how the shared part (Chain and the jumps to it) differs
// from what every guest needs, or "".
func baseDrift(rs hostfw.Table) string {
	switch {
	case !rs.Chains[Chain]:
		return "host firewall chain " + Chain + " missing"
	case !hostfw.First(rs.Rules[chainInput], jump):
		return "host firewall jump to " + Chain + " is not first in " + chainInput
	case !rs.Chains[chainDockerUser] || !hostfw.First(rs.Rules[chainDockerUser], jump):
		return "host firewall jump to " + Chain + " is not first in " + chainDockerUser
	case !hostfw.Contains(rs.Rules[chainForward], toDockerUser):
		return "host firewall: " + chainForward + " does not reach " + chainDockerUser
	}
	return ""
}

// drift says how g's rules differ from what is installed, or "".
func drift(rs hostfw.Table, g guestRules) string {
	if d := baseDrift(rs); d != "" {
		return d
	}
	have := tagged(rs, g.Comment())
	want := g.Rules()
	switch {
	case len(have) == 0:
		return "host firewall rules missing"
	case !slices.EqualFunc(have, want, slices.Equal):
		return "host firewall rules incomplete"
	}
	return ""
}

// baseTx returns the restore lines that put Chain and the jumps to it in
// place, or none when they are.
func baseTx(rs hostfw.Table) []string {
	tx := rs.DeclareTx(Chain, chainDockerUser)
	tx = append(tx, rs.JumpFirstTx(jump, chainInput, chainDockerUser)...)
	if !hostfw.Contains(rs.Rules[chainForward], toDockerUser) {
		tx = append(tx, "-I "+chainForward+" 1 "+hostfw.JoinArgs(toDockerUser))
	}
	return tx
}

// installTx returns the restore lines that make g's rules exactly what
// Rules says, in one transaction, or none when they already are. Rules of
// any bottle-reconcile guest that name g's address are replaced too: Docker
// gave the address to this guest, so they are stale leftovers.
func installTx(rs hostfw.Table, g guestRules) []string {
	tx := baseTx(rs)
	stale := func(r []string) bool {
		if hostfw.CommentOf(r) == g.Comment() {
			return true
		}
		if !strings.HasPrefix(hostfw.CommentOf(r), commentPrefix) {
			return false
		}
		addr := g.Guest.String() + "/32"
		for i := 0; i+1 < len(r); i++ {
			if (r[i] == "-s" || r[i] == "-d") && r[i+1] == addr {
				return true
			}
		}
		return false
	}
	var old [][]string
	for _, r := range rs.Rules[Chain] {
		if stale(r) {
			old = append(old, r)
		}
	}
	return append(tx, hostfw.ReplaceTx(Chain, old, g.Rules())...)
}

// removeTx returns the restore lines that delete every rule tagged with
// comment c, or none when there is none.
func removeTx(rs hostfw.Table, c string) []string {
	return hostfw.DeleteTx(Chain, tagged(rs, c))
}

// ofInstance returns Chain's rules tagged for any bottle of instance.
func ofInstance(rs hostfw.Table, instance string) [][]string {
	prefix := ruleComment(instance, "")
	return rs.Matching(Chain, func(c string) bool { return strings.HasPrefix(c, prefix) })
}
