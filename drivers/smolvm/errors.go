package smolvm

import (
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// maxStderr caps how much of smolvm's stderr an error keeps: enough for the
// "Error: ..." line and some context, without carrying a whole pull log.
const maxStderr = 4096

// CmdError is a failed smolvm call. Args is the argv with every -e value
// redacted, so the error can be logged. Err is the error class
// (cerrdefs.ErrConflict, cerrdefs.ErrNotFound, cerrdefs.ErrInvalidArgument,
// context.DeadlineExceeded for a timeout, ...) or the underlying exec error,
// so callers classify with cerrdefs.IsConflict and friends, never by text.
type CmdError struct {
	Args     []string
	ExitCode int // -1 when smolvm did not exit by itself (timeout, not started)
	Stderr   string
	Err      error
}

func (e *CmdError) Error() string {
	var b strings.Builder
	b.WriteString(strings.Join(e.Args, " "))
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, ": exit status %d", e.ExitCode)
	} else if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		b.WriteString(": ")
		b.WriteString(s)
	}
	return b.String()
}

func (e *CmdError) Unwrap() error { return e.Err }

// classify turns the outcome of one smolvm call into nil or a *CmdError. It
// is the only place that reads smolvm's stderr. The texts are quoted from
// smolvm-cli.md §0 and §3 (smolvm 1.9.2); they are fragile by nature, so each
// match is as narrow as the quoted message allows.
func classify(args []string, res result, runErr error) error {
	e := &CmdError{Args: redact(args), ExitCode: res.exitCode, Stderr: tail(string(res.stderr))}
	switch {
	case runErr != nil:
		e.ExitCode = -1
		// A per-call timeout surfaces as context.DeadlineExceeded, which
		// cerrdefs.IsDeadlineExceeded recognises.
		e.Err = runErr
		return e
	case res.exitCode == 0:
		return nil
	case res.exitCode == 2:
		// Clap parse errors (unknown flag, rejected value such as
		// "error: invalid value 'x' for '--allow-cidr <CIDR>': invalid CIDR ...")
		// exit 2.
		e.Err = cerrdefs.ErrInvalidArgument
	case strings.Contains(e.Stderr, "' already exists or is being created"):
		// "Error: config operation failed: create machine: machine 'N' already
		// exists or is being created" (CreateVmReservation::reserve).
		e.Err = cerrdefs.ErrConflict
	case strings.Contains(e.Stderr, "Error: vm not found: "):
		// "Error: vm not found: N" from start, stop, delete and status.
		e.Err = cerrdefs.ErrNotFound
	case strings.Contains(e.Stderr, "Error: config operation failed: machine status: machine '") &&
		strings.Contains(e.Stderr, "' not found"):
		// "Error: config operation failed: machine status: machine 'N' not found"
		// from status --json.
		e.Err = cerrdefs.ErrNotFound
	case strings.Contains(e.Stderr, "create machine: machine name "):
		// "Error: config operation failed: create machine: machine name contains
		// invalid character: '.'" (and similar from validate_vm_name).
		e.Err = cerrdefs.ErrInvalidArgument
	default:
		e.Err = fmt.Errorf("exit status %d", res.exitCode)
	}
	return e
}

// tail keeps the end of s, where smolvm prints its "Error:" line.
func tail(s string) string {
	if len(s) <= maxStderr {
		return s
	}
	return "..." + s[len(s)-maxStderr:]
}

// redact returns a copy of args with the value of every -e/--env entry
// replaced, since env values are secrets. "-e KEY" (forwarded from the
// child's environment) carries no value and is kept.
func redact(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		switch {
		case (a == "-e" || a == "--env") && i+1 < len(out):
			i++
			out[i] = redactEnv(out[i])
		case strings.HasPrefix(a, "--env="):
			out[i] = "--env=" + redactEnv(strings.TrimPrefix(a, "--env="))
		case strings.HasPrefix(a, "-e") && len(a) > 2 && !strings.HasPrefix(a, "--"):
			out[i] = "-e" + redactEnv(a[2:])
		case a == "--":
			return out
		}
	}
	return out
}

func redactEnv(kv string) string {
	k, _, ok := strings.Cut(kv, "=")
	if !ok {
		return kv
	}
	return k + "=<redacted>"
}
