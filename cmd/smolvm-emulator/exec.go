package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// exec and cp have no guest to talk to. exec runs the command ON THE HOST
// (this is NOT isolation: the command can touch anything the caller can),
// in the machine's rootfs stand-in <data>/emu/rootfs/<name>, with an
// environment of PATH, SMOLVM_EMU_ROOTFS, the machine's -e values and exec's
// -e values. cp copies to and from that same directory.

// runningMachine returns a copy of the record of a running machine, or the
// error smolvm's agent connect gives (ensure_running_and_connect), which is
// the same for a zombie, marked unreachable on the way.
func (a *app) runningMachine(name string) (Record, error) {
	var rec Record
	zombie := false
	err := a.store.withLock(false, func(st *stateFile) error {
		r, ok := st.Machines[name]
		if !ok {
			return errorf("vm not found: %s", name)
		}
		if s := a.observedState(r); s != "running" {
			zombie = s == "unreachable"
			return errorf("agent operation failed: connect: machine '%s' is not running. Use 'smolvm machine start --name %s' first.", name, name)
		}
		rec = *r
		return nil
	})
	if zombie {
		a.markUnreachable(name)
	}
	return rec, err
}

// guestPath maps an absolute guest path into the rootfs stand-in; cleaning
// it first keeps ".." from leaving that directory.
func (a *app) guestPath(name, p string) string {
	return filepath.Join(a.rootfsDir(name), filepath.Clean("/"+p))
}

// exec implements `machine exec --name N [-e K=V] [-w DIR] [--timeout D] -- CMD...`.
func (a *app) exec(p parsedArgs) error {
	if len(p.trailing) == 0 {
		return &clapError{msg: "the following required arguments were not provided:\n  <COMMAND>...",
			usage: "smolvm machine exec [OPTIONS] <COMMAND>..."}
	}
	timeout, err := execTimeout(p)
	if err != nil {
		return err
	}
	if p.has("detach") {
		return errorf("smolvm emulator: 'machine exec -d' is not emulated")
	}
	// --name has no short form and defaults to "default" (vm_common.rs
	// 2628-2632).
	name := nameOrDefault(p)
	rec, err := a.runningMachine(name)
	if err != nil {
		return err
	}

	workdir := rec.Workdir
	if w, ok := p.one("workdir"); ok {
		workdir = w
	}
	dir := a.guestPath(name, workdir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("exec workdir: %w", err)
	}
	env := []string{"PATH=" + a.hostPath(), "SMOLVM_EMU_ROOTFS=" + a.rootfsDir(name)}
	for _, kv := range rec.Env {
		env = append(env, kv[0]+"="+kv[1])
	}
	for _, kv := range parseEnvSpec(p.vals["env"], a.lookupEnv) {
		env = append(env, kv[0]+"="+kv[1])
	}

	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, a.guestCommand(name, p.trailing[0]), p.trailing[1:]...)
	cmd.Dir, cmd.Env = dir, env
	// Own process group, so a timeout kills the whole command tree.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if rec.PID != nil {
		if cg := vmmCgroup(*rec.PID); cg != nil {
			defer cg.Close()
			inCgroup(cmd.SysProcAttr, cg)
		}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if p.has("interactive") {
		cmd.Stdin = a.stdin
	}
	// Output is buffered unless --stream, as in the real exec.
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Writer(&outBuf), io.Writer(&errBuf)
	if p.has("stream") {
		cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	}
	runErr := cmd.Run()
	a.stdout.Write(outBuf.Bytes())
	a.stderr.Write(errBuf.Bytes())
	return a.execExit(ctx, runErr)
}

// execTimeout is --timeout, or 0 for none.
func execTimeout(p parsedArgs) (time.Duration, error) {
	v, ok := p.one("timeout")
	if !ok {
		return 0, nil
	}
	d, err := parseHumanDuration(v)
	if err == nil && d == 0 {
		err = fmt.Errorf("timeout must be greater than 0 (e.g., 5sec, 30s)")
	}
	if err != nil {
		return 0, invalidValue(flagSpec{long: "timeout", value: "DURATION"}, v, err.Error())
	}
	return d, nil
}

// execExit turns how the command ended into exec's exit status.
func (a *app) execExit(ctx context.Context, runErr error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return exitCode(124)
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		return nil
	case errors.As(runErr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitCode(128 + int(ws.Signal()))
		}
		return exitCode(ee.ExitCode())
	default:
		// The command could not be started, like a missing binary in the
		// guest: the shell convention 127. Wording not from the source.
		fmt.Fprintf(a.stderr, "exec failed: %v\n", runErr)
		return exitCode(127)
	}
}

// guestCommand maps an absolute command path to the rootfs stand-in when the
// file is there (a binary put in with `machine cp`); anything else runs as
// the host resolves it.
func (a *app) guestCommand(name, argv0 string) string {
	if !filepath.IsAbs(argv0) {
		return argv0
	}
	if st, err := os.Stat(a.guestPath(name, argv0)); err == nil && st.Mode().IsRegular() {
		return a.guestPath(name, argv0)
	}
	return argv0
}

// hostPath is the PATH given to exec'd commands.
func (a *app) hostPath() string {
	if p := a.getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

// cp implements `machine cp SRC DST [--mode 644] [--uid N] [--gid N]`
// (src/cli/machine.rs ~4925-4990). As in smolvm, SRC is checked for ':'
// first, so a local SRC containing ':' is taken as NAME:/path.
func (a *app) cp(p parsedArgs) error {
	src, dst := p.pos[0], p.pos[1]
	for _, f := range []string{"uid", "gid"} {
		if v, ok := p.one(f); ok {
			if _, err := parseUint(flagSpec{long: f, value: strings.ToUpper(f)}, v, 32); err != nil {
				return err
			}
		}
	}
	name, gpath, upload := "", "", false
	if n, g, ok := strings.Cut(src, ":"); ok {
		name, gpath = n, g
	} else if n, g, ok := strings.Cut(dst, ":"); ok {
		name, gpath, upload = n, g, true
	} else {
		return errorf("config operation failed: cp: one of SRC or DST must use machine:path syntax (e.g., myvm:/workspace/file)")
	}
	if !upload && (p.has("mode") || p.has("uid") || p.has("gid")) {
		return errorf("config operation failed: cp: --mode/--uid/--gid apply to uploads only (host -> machine)")
	}
	if _, err := a.runningMachine(name); err != nil {
		return err
	}
	if !upload {
		// As read_file_to_path (src/agent/client.rs 2224-2244): the local
		// path is created first, with File::create, so a directory there
		// is an error and nothing is put inside it.
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return errorf("agent operation failed: write local file: %s: %s", dst, rustIOError(err))
		}
		defer f.Close()
		data, err := os.ReadFile(a.guestPath(name, gpath))
		if err != nil {
			// Wording not from the source.
			return errorf("agent operation failed: read file '%s': %v", gpath, errors.Unwrap(err))
		}
		if _, err := f.Write(data); err != nil {
			return errorf("agent operation failed: write local file: %v", err)
		}
		return f.Close()
	}
	mode := os.FileMode(0o644)
	if v, ok := p.one("mode"); ok {
		m, err := strconv.ParseUint(strings.TrimPrefix(v, "0o"), 8, 32)
		if err != nil || m > 0o7777 {
			return errorf("config operation failed: cp: invalid octal mode '%s' (expected e.g. 644)", v)
		}
		mode = os.FileMode(m)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return errorf("agent operation failed: read local file: %s: %s", src, rustIOError(err))
	}
	target := a.guestPath(name, gpath)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return writeAtomic(target, data, mode)
}

// writeAtomic writes through a temp file and rename, as the guest agent's
// write is atomic.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cp-*")
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("cp: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("cp: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return nil
}
