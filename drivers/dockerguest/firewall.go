package dockerguest

import (
	"bufio"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
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

// ruleset is the filter table as iptables-save prints it.
type ruleset struct {
	chains map[string]bool
	rules  map[string][][]string // by chain, in order
}

// parseSave reads the filter table out of iptables-save output. It keeps
// every chain and rule, ours or not, since the order of rules in INPUT and
// DOCKER-USER matters.
func parseSave(out string) (ruleset, error) {
	rs := ruleset{chains: map[string]bool{}, rules: map[string][][]string{}}
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			in = line == "*filter"
			seen = seen || in
		case !in:
		case line == "COMMIT":
			in = false
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			rs.chains[name] = true
		case strings.HasPrefix(line, "-A "):
			args, err := splitArgs(line[len("-A "):])
			if err != nil || len(args) == 0 {
				return ruleset{}, fmt.Errorf("iptables-save line %d: %q: %v", n, line, err)
			}
			rs.rules[args[0]] = append(rs.rules[args[0]], args[1:])
		default:
			return ruleset{}, fmt.Errorf("iptables-save line %d: unexpected %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return ruleset{}, fmt.Errorf("read iptables-save output: %w", err)
	}
	if !seen {
		return ruleset{}, fmt.Errorf("iptables-save printed no filter table")
	}
	return rs, nil
}

// splitArgs splits a rule as iptables-save quotes it: words separated by
// spaces, double quotes around words with spaces, backslash escapes inside.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case c == ' ' && !quoted:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// joinArgs writes args the way iptables-restore reads them back.
func joinArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"\\'") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// commentOf returns the value of a rule's comment match, or "".
func commentOf(rule []string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "--comment" {
			return rule[i+1]
		}
	}
	return ""
}

// tagged returns Chain's rules that carry comment c, in order.
func (rs ruleset) tagged(c string) [][]string {
	var out [][]string
	for _, r := range rs.rules[Chain] {
		if commentOf(r) == c {
			out = append(out, r)
		}
	}
	return out
}

func first(rules [][]string, r []string) bool { return len(rules) > 0 && slices.Equal(rules[0], r) }

func contains(rules [][]string, r []string) bool {
	return slices.ContainsFunc(rules, func(x []string) bool { return slices.Equal(x, r) })
}

// baseDrift says how the shared part (Chain and the jumps to it) differs
// from what every guest needs, or "".
func (rs ruleset) baseDrift() string {
	switch {
	case !rs.chains[Chain]:
		return "host firewall chain " + Chain + " missing"
	case !first(rs.rules[chainInput], jump):
		return "host firewall jump to " + Chain + " is not first in " + chainInput
	case !rs.chains[chainDockerUser] || !first(rs.rules[chainDockerUser], jump):
		return "host firewall jump to " + Chain + " is not first in " + chainDockerUser
	case !contains(rs.rules[chainForward], toDockerUser):
		return "host firewall: " + chainForward + " does not reach " + chainDockerUser
	}
	return ""
}

// drift says how g's rules differ from what is installed, or "".
func (rs ruleset) drift(g guestRules) string {
	if d := rs.baseDrift(); d != "" {
		return d
	}
	have := rs.tagged(g.Comment())
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
func (rs ruleset) baseTx() []string {
	var tx []string
	if !rs.chains[Chain] {
		// Declaring a chain in iptables-restore flushes it, so only one
		// that does not exist yet is declared.
		tx = append(tx, ":"+Chain+" - [0:0]")
	}
	if !rs.chains[chainDockerUser] {
		tx = append(tx, ":"+chainDockerUser+" - [0:0]")
	}
	for _, c := range []string{chainInput, chainDockerUser} {
		if first(rs.rules[c], jump) {
			continue
		}
		// Any jump further down is moved to the top.
		for _, r := range rs.rules[c] {
			if slices.Equal(r, jump) {
				tx = append(tx, "-D "+c+" "+joinArgs(jump))
			}
		}
		tx = append(tx, "-I "+c+" 1 "+joinArgs(jump))
	}
	if !contains(rs.rules[chainForward], toDockerUser) {
		tx = append(tx, "-I "+chainForward+" 1 "+joinArgs(toDockerUser))
	}
	return tx
}

// installTx returns the restore lines that make g's rules exactly what
// Rules says, in one transaction, or none when they already are. Rules of
// any bottle-reconcile guest that name g's address are replaced too: Docker
// gave the address to this guest, so they are stale leftovers.
func (rs ruleset) installTx(g guestRules) []string {
	tx := rs.baseTx()
	stale := func(r []string) bool {
		if commentOf(r) == g.Comment() {
			return true
		}
		if !strings.HasPrefix(commentOf(r), commentPrefix) {
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
	for _, r := range rs.rules[Chain] {
		if stale(r) {
			old = append(old, r)
		}
	}
	if slices.EqualFunc(old, g.Rules(), slices.Equal) {
		return tx
	}
	for _, r := range old {
		tx = append(tx, "-D "+Chain+" "+joinArgs(r))
	}
	for _, r := range g.Rules() {
		tx = append(tx, "-A "+Chain+" "+joinArgs(r))
	}
	return tx
}

// removeTx returns the restore lines that delete every rule tagged with
// comment c, or none when there is none.
func (rs ruleset) removeTx(c string) []string {
	return deleteTx(rs.tagged(c))
}

// ofInstance returns Chain's rules tagged for any bottle of instance.
func (rs ruleset) ofInstance(instance string) [][]string {
	prefix := ruleComment(instance, "")
	var out [][]string
	for _, r := range rs.rules[Chain] {
		if strings.HasPrefix(commentOf(r), prefix) {
			out = append(out, r)
		}
	}
	return out
}

// deleteTx returns the restore lines that delete rules of Chain.
func deleteTx(rules [][]string) []string {
	var tx []string
	for _, r := range rules {
		tx = append(tx, "-D "+Chain+" "+joinArgs(r))
	}
	return tx
}

// restoreInput wraps transaction lines for iptables-restore --noflush,
// which applies them all or none.
func restoreInput(tx []string) string {
	return "*filter\n" + strings.Join(tx, "\n") + "\nCOMMIT\n"
}
