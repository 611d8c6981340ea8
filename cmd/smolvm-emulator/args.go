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
	p := parsedArgs{vals: map[string][]string{}}
	unexpected := func(a string) *clapError {
		e := &clapError{msg: fmt.Sprintf("unexpected argument '%s' found", a), usage: c.usage}
		if c.trailing && !strings.HasPrefix(a, "-") {
			e.tip = fmt.Sprintf("to pass '%s' as a value, use '-- %s'", a, a)
		}
		return e
	}
	set := func(f flagSpec, v string) error {
		if !f.multi && len(p.vals[f.long]) > 0 {
			return &clapError{msg: fmt.Sprintf("the argument '%s' cannot be used multiple times", f.display()), usage: c.usage}
		}
		p.vals[f.long] = append(p.vals[f.long], v)
		return nil
	}
	missingValue := func(f flagSpec) error {
		return &clapError{msg: fmt.Sprintf("a value is required for '%s' but none was supplied", f.display()), usage: c.usage}
	}
	// A following token that looks like a flag is not taken as a value
	// (clap's default, allow_hyphen_values = false); a lone "-" is a value.
	isValue := func(s string) bool { return s == "-" || !strings.HasPrefix(s, "-") }

	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if !c.trailing {
				if len(c.positionals) > 0 {
					// cp-like commands: the rest are positionals.
					p.pos = append(p.pos, args[i+1:]...)
					i = len(args)
					continue
				}
				if i+1 < len(args) {
					return p, unexpected(args[i+1])
				}
				continue
			}
			p.trailing = append([]string{}, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			f, ok := c.lookupLong(name)
			if !ok {
				return p, unexpected("--" + name)
			}
			if f.value == "" {
				if hasVal {
					return p, &clapError{msg: fmt.Sprintf("unexpected value '%s' for '--%s' found; no more were expected", val, name), usage: c.usage}
				}
				if err := set(f, "true"); err != nil {
					return p, err
				}
				continue
			}
			if !hasVal {
				if i+1 >= len(args) || !isValue(args[i+1]) {
					return p, missingValue(f)
				}
				i++
				val = args[i]
			}
			if err := set(f, val); err != nil {
				return p, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// Short flags, possibly clustered (-fv) or with an attached value (-nNAME).
			for j := 1; j < len(a); j++ {
				f, ok := c.lookupShort(a[j])
				if !ok {
					return p, unexpected("-" + string(a[j]))
				}
				if f.value == "" {
					if err := set(f, "true"); err != nil {
						return p, err
					}
					continue
				}
				val := strings.TrimPrefix(a[j+1:], "=")
				if j+1 >= len(a) {
					if i+1 >= len(args) || !isValue(args[i+1]) {
						return p, missingValue(f)
					}
					i++
					val = args[i]
				}
				if err := set(f, val); err != nil {
					return p, err
				}
				break
			}
		default:
			if c.trailingVarArg {
				p.trailing = append([]string{}, args[i:]...)
				i = len(args)
				continue
			}
			if len(p.pos) >= len(c.positionals) {
				return p, unexpected(a)
			}
			p.pos = append(p.pos, a)
		}
	}

	for _, pair := range c.conflicts {
		if p.has(pair[0]) && p.has(pair[1]) {
			a, _ := c.lookupLong(pair[0])
			b, _ := c.lookupLong(pair[1])
			// clap names the argument that came first on the command line.
			if indexOfFlag(args, b) < indexOfFlag(args, a) {
				a, b = b, a
			}
			return p, &clapError{msg: fmt.Sprintf("the argument '%s' cannot be used with '%s'", a.display(), b.display()), usage: c.usage}
		}
	}
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
		return p, &clapError{msg: "the following required arguments were not provided:\n" + strings.Join(missing, "\n"), usage: c.usage}
	}
	return p, nil
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
