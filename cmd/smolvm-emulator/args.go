package main

import (
	"fmt"
	"strings"
)

// flagSpec describes one option the way clap declares it.
type flagSpec struct {
	long  string // without the leading "--"
	short byte   // 0 when there is no short form
	value string // placeholder shown in errors, e.g. "NAME"; "" for a boolean flag
	multi bool   // may be given more than once
}

// display is how clap names an argument in its error messages.
func (f flagSpec) display() string {
	if f.value == "" {
		return "--" + f.long
	}
	return fmt.Sprintf("--%s <%s>", f.long, f.value)
}

// cmdSpec describes a subcommand's arguments.
type cmdSpec struct {
	usage       string     // the clap "Usage:" line
	flags       []flagSpec // options
	positionals []string   // names of plain positional arguments, in order (cp: SRC DST)
	trailing    bool       // accepts "-- CMD..." (clap `last = true`)
	// trailingVarArg: the first plain argument starts the command and
	// everything after it is taken as is, "--" or not (clap
	// `trailing_var_arg = true`, exec's COMMAND).
	trailingVarArg bool
	required       []string // long names of required options
	conflicts      [][2]string
}

// parsedArgs is the result of parsing a subcommand's arguments.
type parsedArgs struct {
	vals     map[string][]string // by long name; booleans hold "true"
	pos      []string
	trailing []string
}

func (p parsedArgs) has(long string) bool { return len(p.vals[long]) > 0 }

// one returns the last value of an option, and whether it was given.
func (p parsedArgs) one(long string) (string, bool) {
	v := p.vals[long]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// clapError is a command-line parse error: clap prints it as "error: ..." and exits 2.
type clapError struct {
	msg   string
	usage string // empty for value-validation errors, which clap prints without a usage line
	tip   string
}

func (e *clapError) Error() string { return e.msg }

// text renders the error the way clap 4 does.
func (e *clapError) text() string {
	var b strings.Builder
	b.WriteString("error: " + e.msg + "\n")
	if e.tip != "" {
		b.WriteString("\n  tip: " + e.tip + "\n")
	}
	if e.usage != "" {
		b.WriteString("\nUsage: " + e.usage + "\n")
	}
	b.WriteString("\nFor more information, try '--help'.\n")
	return b.String()
}

// invalidValue builds clap's value_parser rejection.
func invalidValue(f flagSpec, val, reason string) *clapError {
	return &clapError{msg: fmt.Sprintf("invalid value '%s' for '%s': %s", val, f.display(), reason)}
}

func (c cmdSpec) lookupLong(name string) (flagSpec, bool) {
	for _, f := range c.flags {
		if f.long == name {
			return f, true
		}
	}
	return flagSpec{}, false
}

func (c cmdSpec) lookupShort(b byte) (flagSpec, bool) {
	for _, f := range c.flags {
		if f.short != 0 && f.short == b {
			return f, true
		}
	}
	return flagSpec{}, false
}

// parse parses args like clap would for this spec. It does not know about
// --help; the caller handles that first.
func (c cmdSpec) parse(args []string) (parsedArgs, error) {
	ps := &parser{c: c, args: args, p: parsedArgs{vals: map[string][]string{}}}
	for ; ps.i < len(args); ps.i++ {
		if err := ps.token(args[ps.i]); err != nil {
			return ps.p, err
		}
	}
	if err := c.checkConflicts(ps.p, args); err != nil {
		return ps.p, err
	}
	return ps.p, c.checkRequired(ps.p)
}

// parser is one run of parse: the token it is at, and what it has taken.
type parser struct {
	c    cmdSpec
	args []string
	i    int
	p    parsedArgs
}

// token takes args[i], and whatever values follow it.
func (ps *parser) token(a string) error {
	switch {
	case a == "--":
		return ps.doubleDash()
	case strings.HasPrefix(a, "--"):
		return ps.long(a[2:])
	case strings.HasPrefix(a, "-") && len(a) > 1:
		return ps.shorts(a)
	default:
		return ps.plain(a)
	}
}

// rest ends the loop: every token left has been taken.
func (ps *parser) rest() { ps.i = len(ps.args) }

func (ps *parser) unexpected(a string) *clapError {
	e := &clapError{msg: fmt.Sprintf("unexpected argument '%s' found", a), usage: ps.c.usage}
	if ps.c.trailing && !strings.HasPrefix(a, "-") {
		e.tip = fmt.Sprintf("to pass '%s' as a value, use '-- %s'", a, a)
	}
	return e
}

func (ps *parser) set(f flagSpec, v string) error {
	if !f.multi && len(ps.p.vals[f.long]) > 0 {
		return &clapError{msg: fmt.Sprintf("the argument '%s' cannot be used multiple times", f.display()), usage: ps.c.usage}
	}
	ps.p.vals[f.long] = append(ps.p.vals[f.long], v)
	return nil
}

// next takes the token after args[i] as f's value. A token that looks like
// a flag is not taken (clap's default, allow_hyphen_values = false); a lone
// "-" is a value.
func (ps *parser) next(f flagSpec) (string, error) {
	if ps.i+1 >= len(ps.args) || (ps.args[ps.i+1] != "-" && strings.HasPrefix(ps.args[ps.i+1], "-")) {
		return "", &clapError{msg: fmt.Sprintf("a value is required for '%s' but none was supplied", f.display()), usage: ps.c.usage}
	}
	ps.i++
	return ps.args[ps.i], nil
}

// doubleDash: "--" starts the trailing command, or, for cp-like commands,
// the positionals.
func (ps *parser) doubleDash() error {
	if ps.c.trailing {
		ps.p.trailing = append([]string{}, ps.args[ps.i+1:]...)
		ps.rest()
		return nil
	}
	if len(ps.c.positionals) > 0 {
		ps.p.pos = append(ps.p.pos, ps.args[ps.i+1:]...)
		ps.rest()
		return nil
	}
	if ps.i+1 < len(ps.args) {
		return ps.unexpected(ps.args[ps.i+1])
	}
	return nil
}

// long takes "--name", "--name=value" or "--name value".
func (ps *parser) long(arg string) error {
	name, val, hasVal := strings.Cut(arg, "=")
	f, ok := ps.c.lookupLong(name)
	if !ok {
		return ps.unexpected("--" + name)
	}
	if f.value == "" {
		if hasVal {
			return &clapError{msg: fmt.Sprintf("unexpected value '%s' for '--%s' found; no more were expected", val, name), usage: ps.c.usage}
		}
		return ps.set(f, "true")
	}
	if !hasVal {
		var err error
		if val, err = ps.next(f); err != nil {
			return err
		}
	}
	return ps.set(f, val)
}

// shorts takes short flags, possibly clustered (-fv) or with an attached
// value (-nNAME).
func (ps *parser) shorts(a string) error {
	for j := 1; j < len(a); j++ {
		f, ok := ps.c.lookupShort(a[j])
		if !ok {
			return ps.unexpected("-" + string(a[j]))
		}
		if f.value == "" {
			if err := ps.set(f, "true"); err != nil {
				return err
			}
			continue
		}
		val := strings.TrimPrefix(a[j+1:], "=")
		if j+1 >= len(a) {
			var err error
			if val, err = ps.next(f); err != nil {
				return err
			}
		}
		return ps.set(f, val)
	}
	return nil
}

// plain takes a token that is no flag: the start of exec's command, or a
// positional.
func (ps *parser) plain(a string) error {
	if ps.c.trailingVarArg {
		ps.p.trailing = append([]string{}, ps.args[ps.i:]...)
		ps.rest()
		return nil
	}
	if len(ps.p.pos) >= len(ps.c.positionals) {
		return ps.unexpected(a)
	}
	ps.p.pos = append(ps.p.pos, a)
	return nil
}

// checkConflicts refuses two options that exclude each other.
func (c cmdSpec) checkConflicts(p parsedArgs, args []string) error {
	for _, pair := range c.conflicts {
		if p.has(pair[0]) && p.has(pair[1]) {
			a, _ := c.lookupLong(pair[0])
			b, _ := c.lookupLong(pair[1])
			// clap names the argument that came first on the command line.
			if indexOfFlag(args, b) < indexOfFlag(args, a) {
				a, b = b, a
			}
			return &clapError{msg: fmt.Sprintf("the argument '%s' cannot be used with '%s'", a.display(), b.display()), usage: c.usage}
		}
	}
	return nil
}

// checkRequired names every required option and positional not given.
func (c cmdSpec) checkRequired(p parsedArgs) error {
	var missing []string
	for _, r := range c.required {
		if !p.has(r) {
			f, _ := c.lookupLong(r)
			missing = append(missing, "  "+f.display())
		}
	}
	for i, name := range c.positionals {
		if i >= len(p.pos) {
			missing = append(missing, "  <"+name+">")
		}
	}
	if len(missing) > 0 {
		return &clapError{msg: "the following required arguments were not provided:\n" + strings.Join(missing, "\n"), usage: c.usage}
	}
	return nil
}

// indexOfFlag is the position of the first token that names f (or len(args)).
func indexOfFlag(args []string, f flagSpec) int {
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--"+f.long || strings.HasPrefix(a, "--"+f.long+"=") {
			return i
		}
		if f.short != 0 && len(a) >= 2 && a[0] == '-' && a[1] != '-' && strings.IndexByte(a[1:], f.short) >= 0 {
			return i
		}
	}
	return len(args)
}
