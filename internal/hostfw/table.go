// Package hostfw reads and changes the host's iptables filter table, for
// the drivers that keep their guests in with host rules. It knows nothing
// of guests: a driver decides its rules, tags them with a comment and asks
// this package to read, compare and apply them.
package hostfw

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
)

// Table is the filter table as iptables-save prints it: every chain and
// rule, ours or not, since the order of rules in shared chains matters.
// Each rule is the argument list that follows "-A CHAIN".
type Table struct {
	Chains map[string]bool
	Rules  map[string][][]string // by chain, in order
}

// ParseSave reads the filter table out of iptables-save output.
func ParseSave(out string) (Table, error) {
	t := Table{Chains: map[string]bool{}, Rules: map[string][][]string{}}
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
			t.Chains[name] = true
		case strings.HasPrefix(line, "-A "):
			args, err := SplitArgs(line[len("-A "):])
			if err != nil || len(args) == 0 {
				return Table{}, fmt.Errorf("iptables-save line %d: %q: %v", n, line, err)
			}
			t.Rules[args[0]] = append(t.Rules[args[0]], args[1:])
		default:
			return Table{}, fmt.Errorf("iptables-save line %d: unexpected %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return Table{}, fmt.Errorf("read iptables-save output: %w", err)
	}
	if !seen {
		return Table{}, fmt.Errorf("iptables-save printed no filter table")
	}
	return t, nil
}

// SplitArgs splits a rule as iptables-save quotes it: words separated by
// spaces, double quotes around words with spaces, backslash escapes inside.
func SplitArgs(s string) ([]string, error) {
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

// JoinArgs writes args the way iptables-restore reads them back.
func JoinArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"\\'") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// CommentOf returns the value of a rule's comment match, or "".
func CommentOf(rule []string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "--comment" {
			return rule[i+1]
		}
	}
	return ""
}

// Tagged returns chain's rules whose comment is c, in order.
func (t Table) Tagged(chain, c string) [][]string {
	return t.Matching(chain, func(comment string) bool { return comment == c })
}

// Matching returns chain's rules whose comment satisfies keep, in order.
func (t Table) Matching(chain string, keep func(comment string) bool) [][]string {
	var out [][]string
	for _, r := range t.Rules[chain] {
		if keep(CommentOf(r)) {
			out = append(out, r)
		}
	}
	return out
}

// First reports whether r is the first of rules.
func First(rules [][]string, r []string) bool { return len(rules) > 0 && slices.Equal(rules[0], r) }

// Contains reports whether rules holds r.
func Contains(rules [][]string, r []string) bool {
	return slices.ContainsFunc(rules, func(x []string) bool { return slices.Equal(x, r) })
}

// JumpFirstTx returns the restore lines that make jump the first rule of
// each of chains (moving any copy further down), or none when it is.
func (t Table) JumpFirstTx(jump []string, chains ...string) []string {
	var tx []string
	for _, c := range chains {
		if First(t.Rules[c], jump) {
			continue
		}
		for _, r := range t.Rules[c] {
			if slices.Equal(r, jump) {
				tx = append(tx, "-D "+c+" "+JoinArgs(jump))
			}
		}
		tx = append(tx, "-I "+c+" 1 "+JoinArgs(jump))
	}
	return tx
}

// DeclareTx returns the restore lines that create the chains that do not
// exist yet. Declaring a chain in iptables-restore flushes it, so only a
// missing one is declared.
func (t Table) DeclareTx(chains ...string) []string {
	var tx []string
	for _, c := range chains {
		if !t.Chains[c] {
			tx = append(tx, ":"+c+" - [0:0]")
		}
	}
	return tx
}

// ReplaceTx returns the restore lines that replace old, rules of chain,
// with want, or none when they are equal.
func ReplaceTx(chain string, old, want [][]string) []string {
	if slices.EqualFunc(old, want, slices.Equal) {
		return nil
	}
	tx := DeleteTx(chain, old)
	for _, r := range want {
		tx = append(tx, "-A "+chain+" "+JoinArgs(r))
	}
	return tx
}

// DeleteTx returns the restore lines that delete rules of chain.
func DeleteTx(chain string, rules [][]string) []string {
	var tx []string
	for _, r := range rules {
		tx = append(tx, "-D "+chain+" "+JoinArgs(r))
	}
	return tx
}

// RestoreInput wraps transaction lines for iptables-restore --noflush,
// which applies them all or none.
func RestoreInput(tx []string) string {
	return "*filter\n" + strings.Join(tx, "\n") + "\nCOMMIT\n"
}
