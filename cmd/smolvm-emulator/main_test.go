package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// emuBin is the emulator built once by TestMain; every test runs it as a
// subprocess, the way a driver would.
var emuBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smolvm-emu-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	emuBin = filepath.Join(dir, "smolvm")
	build := exec.Command("go", "build", "-o", emuBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build emulator:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// emu is one data dir (one fake HOME) plus extra environment.
type emu struct {
	t    *testing.T
	data string
	env  []string
}

func newEmu(t *testing.T) *emu {
	t.Helper()
	return &emu{t: t, data: t.TempDir()}
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs the emulator with args; stdin is empty (EOF) unless given.
func (e *emu) run(args ...string) result {
	e.t.Helper()
	return e.runWith(nil, "", args...)
}

func (e *emu) runWith(env []string, stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, emuBin, args...)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent", "SMOLVM_DATA_DIR=" + e.data}, e.env...), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// must runs args and fails the test unless it exits 0.
func (e *emu) must(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// status decodes `machine status --json` for name.
func (e *emu) status(name string) map[string]any {
	e.t.Helper()
	r := e.must("machine", "status", "-n", name, "--json")
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		e.t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	return m
}

var runningRE = regexp.MustCompile(`^Machine '([^']+)' running \(PID: (\d+)\)\n$`)

// start starts name and returns the PID it reports.
func (e *emu) start(name string) int {
	e.t.Helper()
	r := e.must("machine", "start", "-n", name)
	m := runningRE.FindStringSubmatch(r.stdout)
	if m == nil || m[1] != name {
		e.t.Fatalf("start %s: stdout %q", name, r.stdout)
	}
	pid, _ := strconv.Atoi(m[2])
	return pid
}

// check compares a result with expectations. wantStderr is matched in full
// unless stderrPrefix, used for clap errors whose first line alone is
// quoted in the reference.
type want struct {
	code         int
	stdout       string
	stderr       string
	stderrPrefix bool
}

func (w want) check(t *testing.T, r result) {
	t.Helper()
	if r.code != w.code {
		t.Errorf("exit code = %d, want %d (stderr %q)", r.code, w.code, r.stderr)
	}
	if r.stdout != w.stdout {
		t.Errorf("stdout = %q, want %q", r.stdout, w.stdout)
	}
	if w.stderrPrefix {
		if !strings.HasPrefix(r.stderr, w.stderr) {
			t.Errorf("stderr = %q, want prefix %q", r.stderr, w.stderr)
		}
	} else if r.stderr != w.stderr {
		t.Errorf("stderr = %q, want %q", r.stderr, w.stderr)
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"long", nil, []string{"--version"}, "smolvm 1.9.2\n"},
		{"short", nil, []string{"-V"}, "smolvm 1.9.2\n"},
		{"overridden", []string{"SMOLVM_EMU_VERSION=1.7.0"}, []string{"--version"}, "smolvm 1.7.0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			want{code: 0, stdout: tt.want}.check(t, e.runWith(tt.env, "", tt.args...))
		})
	}
}

func TestTopLevelErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want want
	}{
		{"no version subcommand", []string{"version"}, want{code: 2, stderr: "error: unrecognized subcommand 'version'\n", stderrPrefix: true}},
		{"no inspect", []string{"machine", "inspect"}, want{code: 2, stderr: "error: unrecognized subcommand 'inspect'\n", stderrPrefix: true}},
		{"not emulated", []string{"machine", "fork"}, want{code: 1, stderr: "Error: smolvm emulator: 'machine fork' is not emulated\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.check(t, newEmu(t).run(tt.args...))
		})
	}
}
