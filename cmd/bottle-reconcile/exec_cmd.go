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

// envFlag collects repeated -e KEY=VALUE flags. Its String never shows a
// value: flag's usage output prints defaults.
type envFlag []string

func (f *envFlag) String() string { return "" }

func (f *envFlag) Set(s string) error {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got a value without '=' (or an empty KEY)")
	}
	*f = append(*f, s)
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
	fs.Var(&envs, "e", "set KEY=VALUE in the command's environment (repeatable; values are never logged)")
	name, argv, err := splitCommand(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile exec: %v\n", err)
		fs.Usage()
		return exitUsage
	}
	if err := c.resolve(*dir); err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitUsage
	}
	e, err := c.build(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitExecFailed
	}
	defer e.Close()
	sh, g, err := c.findGuest(ctx, e, name)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile exec: %v\n", err)
		return exitExecFailed
	}
	x := guestio.Exec{Cmd: argv, Env: envs, Dir: *workdir, TTY: *tty, Stdout: stdout, Stderr: stderr}
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
	code, err := sh.Exec(ctx, g, x)
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
