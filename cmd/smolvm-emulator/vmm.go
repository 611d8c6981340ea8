package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// The VMM stand-in: a running machine is a detached child process
// (`smolvm __vmm NAME DATADIR`) that only sleeps. Its PID is what start
// records, and the machine's reported state is derived from whether that
// process still lives, as smolvm derives `stopped` from a dead VMM PID.

// vmmMain is the sleeper. It exits on SIGTERM/SIGKILL, and on its own once
// the data dir is gone (a removed test temp dir), so tests do not leak it.
// It waits on inotify for that, not on a timer: an idle machine costs
// nothing, as an idle bottle should, so a measurement of idle bottles with
// this emulator standing in for smolvm measures the bottles.
func (a *app) vmmMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(a.stderr, "usage: smolvm __vmm NAME DATADIR")
		return 2
	}
	dir := newStore(args[1]).dir
	w, err := fsnotify.NewWatcher()
	if err != nil {
		fmt.Fprintf(a.stderr, "smolvm __vmm: watch %s: %v\n", dir, err)
		return 1
	}
	defer w.Close()
	// Added after the watcher exists, so a removal from here on is an
	// event; one before it makes Add fail.
	if err := w.Add(dir); err != nil {
		return 0
	}
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return 0
			}
			if ev.Name == dir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
				return 0
			}
		case err, ok := <-w.Errors:
			if !ok {
				return 0
			}
			fmt.Fprintf(a.stderr, "smolvm __vmm: watch %s: %v\n", dir, err)
		}
	}
}

// spawnVMM starts the sleeper for name, detached in its own session and with
// no inherited stdio, so a caller waiting for `start`'s output to close is
// not held up by it.
func (a *app) spawnVMM(name string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("locate emulator binary: %w", err)
	}
	cmd := exec.Command(exe, "__vmm", name, a.home)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("spawn vmm: %w", err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Process.Release(); err != nil {
		return 0, fmt.Errorf("release vmm: %w", err)
	}
	return pid, nil
}

// vmmAlive reports whether pid is a live (non-zombie) sleeper for name in
// the data dir home.
// Checking the command line guards against PID reuse.
func vmmAlive(pid int, name, home string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	if len(argv) != 4 || string(argv[1]) != "__vmm" || string(argv[2]) != name || string(argv[3]) != home {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state letter follows the ")" that closes the command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		switch stat[i+2] {
		case 'Z', 'X':
			return false
		}
	}
	return true
}

// terminate stops the sleeper: SIGTERM, then SIGKILL if it lingers.
func terminate(pid int, name, home string) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill vmm %d: %w", pid, err)
		}
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if !vmmAlive(pid, name, home) {
				return nil
			}
		}
	}
	return fmt.Errorf("vmm %d for machine '%s' did not exit", pid, name)
}

// observedState is the state smolvm would report for r.
func (a *app) observedState(r *Record) string {
	if r.State == "frozen" && (r.PID == nil || !vmmAlive(*r.PID, r.Name, a.home)) {
		return "stopped"
	}
	if r.State == "running" {
		// A dead VMM is stopped whatever its agent did: the ping fails
		// too (state_probe.rs resolve_state).
		if r.PID != nil && vmmAlive(*r.PID, r.Name, a.home) {
			if r.AgentDown {
				return "unreachable"
			}
			return "running"
		}
		return "stopped"
	}
	// A persisted unreachable (or any other) state is reported as is,
	// without probing.
	return r.State
}
