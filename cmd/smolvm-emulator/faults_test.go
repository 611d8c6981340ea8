package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestFailNext(t *testing.T) {
	tests := []struct {
		name     string
		fault    string
		setup    []string // create these machines (and start "run") before arming the fault
		args     []string
		wantErr  string
		failures int // how many consecutive calls fail
	}{
		{"create", "create", nil, []string{"machine", "create", "-n", "x"}, "Error: injected failure: machine create (SMOLVM_EMU_FAIL_NEXT)\n", 1},
		{"create twice", "create*2", nil, []string{"machine", "create", "-n", "x"}, "Error: injected failure: machine create (SMOLVM_EMU_FAIL_NEXT)\n", 2},
		{"start", "start", []string{"x"}, []string{"machine", "start", "-n", "x"}, "Error: injected failure: machine start (SMOLVM_EMU_FAIL_NEXT)\n", 1},
		{"stop", "stop", []string{"x"}, []string{"machine", "stop", "-n", "x"}, "Error: injected failure: machine stop (SMOLVM_EMU_FAIL_NEXT)\n", 1},
		{"delete via rm", "delete", []string{"x"}, []string{"machine", "rm", "-f", "-n", "x"}, "Error: injected failure: machine delete (SMOLVM_EMU_FAIL_NEXT)\n", 1},
		{"ls via list", "ls", nil, []string{"vm", "list", "--json"}, "Error: injected failure: machine ls (SMOLVM_EMU_FAIL_NEXT)\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			for _, n := range tt.setup {
				e.must("machine", "create", "-n", n)
			}
			e.env = []string{"SMOLVM_EMU_FAIL_NEXT=" + tt.fault + ",status@other"}
			for i := 0; i < tt.failures; i++ {
				want{code: 1, stderr: tt.wantErr}.check(t, e.run(tt.args...))
			}
			// Consumed: the same environment now succeeds.
			e.must(tt.args...)
		})
	}
}

func TestFailNextLeavesStateAlone(t *testing.T) {
	e := newEmu(t)
	e.env = []string{"SMOLVM_EMU_FAIL_NEXT=create"}
	e.run("machine", "create", "-n", "x")
	want{stdout: "[]\n"}.check(t, e.run("machine", "ls", "--json"))
	// A new tag re-arms the fault.
	e.env = []string{"SMOLVM_EMU_FAIL_NEXT=create@2"}
	want{code: 1, stderr: "Error: injected failure: machine create (SMOLVM_EMU_FAIL_NEXT)\n"}.check(t, e.run("machine", "create", "-n", "x"))
}

func TestHang(t *testing.T) {
	for _, fault := range []string{"create", "all"} {
		t.Run(fault, func(t *testing.T) {
			data := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			cmd := exec.CommandContext(ctx, emuBin, "machine", "create", "-n", "x")
			cmd.Env = []string{"SMOLVM_DATA_DIR=" + data, "SMOLVM_EMU_HANG=" + fault}
			start := time.Now()
			err := cmd.Run()
			if ctx.Err() == nil {
				t.Fatalf("create returned after %v (%v), want a hang", time.Since(start), err)
			}
			// A hung call holds no lock: other calls still work.
			e := &emu{t: t, data: data}
			want{stdout: "[]\n"}.check(t, e.run("machine", "ls", "--json"))
		})
	}
}

func TestCrashAfterCreate(t *testing.T) {
	e := newEmu(t)
	want{code: 1}.check(t, e.runWith([]string{"SMOLVM_EMU_CRASH_AFTER_CREATE=1"}, "", "machine", "create", "-n", "x"))
	if got := e.status("x")["state"]; got != "created" {
		t.Errorf("half-created machine state = %v, want created", got)
	}
	want{code: 1, stderr: "Error: config operation failed: create machine: machine 'x' already exists or is being created\n"}.
		check(t, e.run("machine", "create", "-n", "x"))
}

func TestCallLog(t *testing.T) {
	e := newEmu(t)
	calls := [][]string{
		{"machine", "ls", "--json"},
		{"machine", "create", "-n", "x", "--label", "a=b"},
		{"machine", "create", "bad positional"},
		{"--version"},
	}
	for _, c := range calls {
		e.run(c...)
	}
	f, err := os.Open(filepath.Join(e.data, "emu", "calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Time string   `json:"time"`
			PID  int      `json:"pid"`
			Args []string `json:"args"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Time == "" || rec.PID == 0 {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		got = append(got, rec.Args)
	}
	if !slices.EqualFunc(got, calls, slices.Equal) {
		t.Errorf("calls = %q, want %q", got, calls)
	}
}

func TestKillUnknownMachine(t *testing.T) {
	e := newEmu(t)
	want{code: 1, stderr: "Error: vm not found: nope\n"}.check(t, e.run("__emu", "kill", "nope"))
	// A stale SMOLVM_EMU_KILL must not break unrelated calls.
	want{stdout: "[]\n"}.check(t, e.runWith([]string{"SMOLVM_EMU_KILL=nope"}, "", "machine", "ls", "--json"))
}
