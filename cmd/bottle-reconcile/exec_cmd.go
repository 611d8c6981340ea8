package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
)

// exitExecFailed is exec's and cp's exit code when bottle-reconcile itself
// failed (the bottle is missing or not ready, Docker or smolvm failed), as
// docker exec uses it; otherwise exec exits with the command's code.
const exitExecFailed = 125

// envFlag collects repeated -e flags: KEY=VALUE, or KEY alone for the
// value of KEY here (left out when it is not set), as docker exec has it.
// Nothing it says ever shows a value: flag's own errors quote the
// argument, so Set never fails and check reports instead.
type envFlag struct {
	kv  []string
	bad int // entries with an empty KEY
}

func (f *envFlag) String() string { return "" }

func (f *envFlag) Set(s string) error {
	k, _, hasValue := strings.Cut(s, "=")
	switch {
	case k == "":
		f.bad++
	case hasValue:
		f.kv = append(f.kv, s)
	default:
		if v, ok := os.LookupEnv(k); ok {
			f.kv = append(f.kv, k+"="+v)
		}
	}
	return nil
}

func (f *envFlag) check() error {
	if f.bad > 0 {
		return fmt.Errorf("-e: %d entries have an empty KEY; use -e KEY=VALUE or -e KEY", f.bad)
	}
	return nil
}

// cmdExec runs a command in a bottle's guest and exits with its code.
func cmdExec(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("exec", stderr, "exec NAME [-i] [-t] [-e KEY=VALUE]... [-w GUESTDIR] [--dir DIR] -- CMD [ARG]...")
	c.register(fs)
	dir := fs.String("dir", "specs", "the spec directory holding the bottle's spec")
	interactive := fs.Bool("i", false, "keep stdin open and pass it to the command")
	tty := fs.Bool("t", false, "give the command a terminal (with -i, the local terminal is put in raw mode and its size followed)")
	workdir := fs.String("w", "", "working directory in the guest")
	var envs envFlag
	fs.Var(&envs, "e", "set KEY=VALUE in the command's environment, or KEY to pass this KEY's value from here (repeatable; values are never logged)")
	name, argv, err := splitCommand(fs, args)
	if err == nil {
		err = envs.check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile exec: %v\n", err)
		fs.Usage()
		return exitUsage
	}
	e, code := c.open(*dir, stderr, exitExecFailed)
	if e == nil {
		return code
	}
	defer e.Close()
	sh, g, err := c.findGuest(ctx, e, name)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile exec: %v\n", err)
		return exitExecFailed
	}
	x := guestio.Exec{Cmd: argv, Env: envs.kv, Dir: *workdir, TTY: *tty, Stdout: stdout, Stderr: stderr}
	if *interactive {
		x.Stdin = os.Stdin
	}
	if out, ok := stdout.(*os.File); ok && *tty {
		t, err := openTerminal(os.Stdin, out, *interactive)
		if err != nil {
			fmt.Fprintf(stderr, "bottle-reconcile exec: terminal: %v\n", err)
			return exitExecFailed
		}
		defer t.Close()
		if t != nil {
			x.Size, _ = termSize(out)
			x.Resize = t.resize
		}
	}
	code, err = sh.Exec(ctx, g, x)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile exec: %v\n", err)
		if errors.Is(err, context.Canceled) {
			return exitInterrupted
		}
		return exitExecFailed
	}
	return code
}

// splitCommand reads NAME and the command from exec's arguments: flags may
// come before and after NAME; the command starts after "--", or without
// one at the first word after NAME that is not a flag.
func splitCommand(fs *flag.FlagSet, args []string) (string, []string, error) {
	var name string
	var argv []string
	args = joinedShortFlags(args)
	if i := slices.Index(args, "--"); i >= 0 {
		pos, err := parseInterspersed(fs, args[:i])
		if err != nil {
			return "", nil, err
		}
		if len(pos) != 1 {
			return "", nil, fmt.Errorf("want one bottle NAME before --, got %d arguments", len(pos))
		}
		name, argv = pos[0], args[i+1:]
	} else {
		if err := fs.Parse(args); err != nil {
			return "", nil, err
		}
		if fs.NArg() == 0 {
			return "", nil, errors.New("want a bottle NAME and a command")
		}
		name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", nil, err
		}
		argv = fs.Args()
	}
	if len(argv) == 0 {
		return "", nil, fmt.Errorf("no command to run in bottle %q (put it after --)", name)
	}
	return name, argv, nil
}

// joinedShortFlags spells -it and -ti, as docker exec takes them, as the
// two flags the flag package reads; the command after "--" is left alone.
func joinedShortFlags(args []string) []string {
	out := make([]string, 0, len(args)+1)
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "-it" || a == "-ti" {
			out = append(out, "-i", "-t")
			continue
		}
		out = append(out, a)
	}
	return out
}
