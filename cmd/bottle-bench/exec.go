package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// command returns a child in its own process group, so a Ctrl-C at the
// terminal reaches the benchmark alone and it decides how children end:
// SIGTERM when ctx ends (bottle-reconcile then finishes what is in flight),
// SIGKILL a minute later.
func command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	return cmd
}

// runQuiet runs a command, keeping its output only to explain a failure.
func runQuiet(ctx context.Context, op string, env []string, name string, args ...string) error {
	_, err := runOutput(ctx, op, env, name, args...)
	return err
}

// runOutput runs a command and returns its stdout; a failure names op and
// carries the end of stderr.
func runOutput(ctx context.Context, op string, env []string, name string, args ...string) ([]byte, error) {
	stdout, _, err := runCapture(ctx, op, env, name, args...)
	return stdout, err
}

// runCapture runs a command and returns its stdout and stderr; a failure
// names op and carries the end of stderr.
func runCapture(ctx context.Context, op string, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	var out, errb bytes.Buffer
	cmd := command(ctx, env, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), errb.Bytes(), fmt.Errorf("%s: %s: %w%s", op, name, err, tail(errb.String(), 15))
	}
	return out.Bytes(), errb.Bytes(), nil
}

// tail returns the last n lines of s, indented, for an error message.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
