package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	e := newEmu(t)
	e.must("machine", "create", "-n", "vm1")
	if m := e.status("vm1"); m["state"] != "created" || m["pid"] != nil {
		t.Fatalf("fresh machine: state %v pid %v, want created/null", m["state"], m["pid"])
	}
	// stop prints the state it found: created, for a never-started machine.
	want{stdout: "Machine 'vm1' is not running (state: created)\n"}.check(t, e.run("machine", "stop", "-n", "vm1"))

	r := e.must("machine", "start", "-n", "vm1")
	if r.stderr != "Starting machine 'vm1'...\n" {
		t.Errorf("start stderr = %q", r.stderr)
	}
	m := runningRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("start stdout = %q", r.stdout)
	}
	pid, _ := strconv.Atoi(m[2])
	// The PID is a real process that outlives the start call.
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("VMM pid %d not alive: %v", pid, err)
	}
	want{stdout: fmt.Sprintf("Machine 'vm1' already running (PID: %d)\n", pid)}.check(t, e.run("machine", "start", "--name", "vm1"))
	if m := e.status("vm1"); m["state"] != "running" || m["pid"] != float64(pid) {
		t.Fatalf("after start: state %v pid %v, want running/%d", m["state"], m["pid"], pid)
	}

	want{stdout: "Stopping machine 'vm1'...\nStopped machine: vm1\n"}.check(t, e.run("machine", "stop", "-n", "vm1"))
	if vmmAlive(pid, "vm1", e.data) {
		t.Errorf("VMM %d still alive after stop", pid)
	}
	// A clean stop clears the pid (vm_common.rs 2026-2030).
	if m := e.status("vm1"); m["state"] != "stopped" || m["pid"] != nil {
		t.Errorf("after stop: state %v pid %v, want stopped/null", m["state"], m["pid"])
	}
	want{stdout: "Machine 'vm1' is not running (state: stopped)\n"}.check(t, e.run("machine", "stop", "-n", "vm1"))

	if pid2 := e.start("vm1"); pid2 == pid {
		t.Errorf("restart reused pid %d", pid)
	}
	want{stdout: "Stopping machine 'vm1'...\nCleaning up data directory for vm: vm1\nDeleted machine: vm1\n"}.
		check(t, e.run("machine", "delete", "-n", "vm1", "-f"))
	want{stdout: "[]\n"}.check(t, e.run("machine", "ls", "--json"))
}

func TestCrashIsReportedStopped(t *testing.T) {
	tests := []struct {
		name string
		kill func(e *emu)
	}{
		{"hidden command", func(e *emu) { e.must("__emu", "kill", "vm1") }},
		{"env on next call", func(e *emu) { e.env = []string{"SMOLVM_EMU_KILL=vm1"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			e.must("machine", "create", "-n", "vm1")
			pid := e.start("vm1")
			tt.kill(e)
			if m := e.status("vm1"); m["state"] != "stopped" || m["pid"] != float64(pid) {
				t.Errorf("after crash: state %v pid %v, want stopped/%d", m["state"], m["pid"], pid)
			}
			e.env = nil
			want{stdout: "Machine 'vm1' is not running (state: stopped)\n"}.check(t, e.run("machine", "stop", "-n", "vm1"))
			e.start("vm1")
		})
	}
}

func TestNotFound(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want want
	}{
		{"start", []string{"machine", "start", "-n", "nope"}, want{code: 1, stderr: "Error: vm not found: nope\n"}},
		{"stop", []string{"machine", "stop", "-n", "nope"}, want{code: 1, stderr: "Error: vm not found: nope\n"}},
		{"delete", []string{"machine", "delete", "-n", "nope"}, want{code: 1, stderr: "Error: vm not found: nope\n"}},
		{"delete -f", []string{"machine", "rm", "-f", "-n", "nope"}, want{code: 1, stderr: "Error: vm not found: nope\n"}},
		{"status", []string{"machine", "status", "-n", "nope"}, want{code: 1, stderr: "Error: vm not found: nope\n"}},
		{"status --json", []string{"machine", "status", "--name", "nope", "--json"},
			want{code: 1, stderr: "Error: config operation failed: machine status: machine 'nope' not found\n"}},
		{"delete needs a name", []string{"machine", "delete", "-f"},
			want{code: 2, stderr: "error: the following required arguments were not provided:\n  --name <NAME>\n", stderrPrefix: true}},
		{"positional delete as in 0.8", []string{"machine", "delete", "vm1"},
			want{code: 2, stderr: "error: unexpected argument 'vm1' found\n", stderrPrefix: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.check(t, newEmu(t).run(tt.args...))
		})
	}
}

func TestDeletePrompt(t *testing.T) {
	const prompt = "Delete machine 'vm1'? [y/N] "
	tests := []struct {
		name    string
		stdin   string
		running bool
		want    want
		deleted bool
	}{
		// The prompt goes to stderr (vm_common.rs 2352).
		{"EOF cancels", "", false, want{stdout: "Cancelled\n", stderr: prompt}, false},
		{"no cancels", "n\n", false, want{stdout: "Cancelled\n", stderr: prompt}, false},
		{"y deletes", "y\n", false, want{stdout: "Cleaning up data directory for vm: vm1\nDeleted machine: vm1\n", stderr: prompt}, true},
		{"yes deletes", "YES\n", false, want{stdout: "Cleaning up data directory for vm: vm1\nDeleted machine: vm1\n", stderr: prompt}, true},
		{"running is stopped before the prompt", "", true,
			want{stdout: "Stopping machine 'vm1'...\nCancelled\n", stderr: prompt}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			e.must("machine", "create", "-n", "vm1")
			if tt.running {
				e.start("vm1")
			}
			tt.want.check(t, e.runWith(nil, tt.stdin, "vm", "rm", "--name", "vm1"))
			r := e.run("machine", "status", "-n", "vm1", "--json")
			if gone := r.code != 0; gone != tt.deleted {
				t.Fatalf("deleted = %v, want %v", gone, tt.deleted)
			}
			if !tt.deleted {
				if got := e.status("vm1")["state"]; tt.running && got != "stopped" {
					t.Errorf("state after cancelled delete = %v, want stopped", got)
				}
			}
		})
	}
}

func TestStartDefault(t *testing.T) {
	e := newEmu(t)
	r := e.must("machine", "start")
	if runningRE.FindStringSubmatch(r.stdout) == nil || r.stdout[:len("Machine 'default'")] != "Machine 'default'" {
		t.Fatalf("start with no name: %q", r.stdout)
	}
	if got := e.status("default")["state"]; got != "running" {
		t.Errorf("default state = %v", got)
	}
}

// TestVMMExitsWithItsDataDir: a running machine's VMM stand-in ends once its
// data dir is removed (a test's temp dir), so no test leaks one.
func TestVMMExitsWithItsDataDir(t *testing.T) {
	e := newEmu(t)
	e.must("machine", "create", "-n", "vm1")
	pid := e.start("vm1")
	if !vmmAlive(pid, "vm1", e.data) {
		t.Fatalf("VMM %d not alive after start", pid)
	}
	if err := os.RemoveAll(e.data); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for vmmAlive(pid, "vm1", e.data) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("VMM %d still alive 10 s after its data dir was removed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
