package smolvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// call is one smolvm invocation.
type call struct {
	args  []string // without the binary
	env   []string // KEY=VALUE added to smolvm's own environment: exactly the forwarded -e KEY values
	stdin io.Reader
	// stdout and stderr, when set, get smolvm's output as it comes
	// instead of the result's buffers (exec and cp for the CLI).
	stdout, stderr io.Writer
	// terminal, when set, is the local terminal smolvm reads and draws
	// on (exec -t): its process group is made the terminal's foreground
	// group while it runs, else reading from it would stop smolvm
	// (SIGTTIN), and ours is put back after.
	terminal *os.File
	// timeout bounds the call; 0 leaves it to ctx (an interactive exec).
	timeout time.Duration
	// cgroup, when set, is the cgroup (v2) directory smolvm starts in, so
	// the VMM it launches runs there (the host layer).
	cgroup string
}

// result is what a finished smolvm process left behind.
type result struct {
	stdout, stderr []byte
	exitCode       int
}

// runner runs smolvm. It returns an error only when the process could not be
// run to its own exit (not found, timed out, cancelled); a non-zero exit is a
// result, for classify to read.
type runner interface {
	run(ctx context.Context, c call) (result, error)
}

// waitDelay bounds how long Wait keeps reading the pipes after smolvm exited
// or was killed, in case something it started still holds them open.
const waitDelay = 5 * time.Second

// execRunner runs the smolvm binary as a child process, with the minimal
// environment of smolvmEnv plus the call's forwarded values; nothing else of
// the reconciler's environment reaches it.
type execRunner struct {
	binary string
	// lookup reads the reconciler's environment for smolvmEnv; nil means
	// os.LookupEnv. Tests point SMOLVM_DATA_DIR at a temp dir through it.
	lookup func(string) (string, bool)
	// testEnv is appended as is: the emulator's fault-injection knobs in
	// tests. Production code never sets it.
	testEnv []string
}

func (r execRunner) run(ctx context.Context, c call) (result, error) {
	cancel := func() {}
	if c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	defer cancel()

	cmd := exec.CommandContext(ctx, r.binary, c.args...)
	// Forwarded names never collide with smolvmEnv's (spec.SmolvmHostEnv
	// refuses them), so the order does not matter for correctness.
	cmd.Env = append(append(smolvmEnv(r.lookup), r.testEnv...), c.env...)
	cmd.Stdin = c.stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	if c.stderr != nil {
		cmd.Stderr = c.stderr
	}
	// smolvm's installed entry point is a bash wrapper; killing only the
	// direct child could leave its descendants running, so it gets its own
	// process group and the whole group is killed on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.terminal != nil {
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, int(c.terminal.Fd())
		defer takeForeground(c.terminal)
	}
	if c.cgroup != "" {
		// Placed by the kernel at clone (CLONE_INTO_CGROUP), so no code of
		// smolvm's ever runs outside the cgroup.
		dir, err := os.Open(c.cgroup)
		if err != nil {
			return result{exitCode: -1}, fmt.Errorf("open cgroup %s: %w", c.cgroup, err)
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay

	err := cmd.Run()
	res := result{stdout: stdout.Bytes(), stderr: stderr.Bytes(), exitCode: -1}
	if cmd.ProcessState != nil {
		res.exitCode = cmd.ProcessState.ExitCode()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// Killed on timeout or cancellation: whatever exit status the kill
		// produced is not smolvm's answer.
		res.exitCode = -1
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return res, fmt.Errorf("no answer within %s: %w", c.timeout, ctxErr)
		}
		return res, ctxErr
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, err
	}
	return res, nil
}
