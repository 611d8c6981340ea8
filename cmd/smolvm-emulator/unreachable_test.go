package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestUnreachable pins smolvm 1.9.2's zombie VMM (state_probe.rs): listed as
// unreachable, exec/cp refused with the connect error, start and stop
// recovering it with a notice, delete reaping it.
func TestUnreachable(t *testing.T) {
	notice := func(pid int) string {
		return fmt.Sprintf("Machine 'vm1' is unreachable (PID %d alive but agent unresponsive); cleaning up.\n", pid)
	}
	connect := "Error: agent operation failed: connect: machine 'vm1' is not running. Use 'smolvm machine start --name vm1' first.\n"
	restarted := regexp.MustCompile(`^Machine 'vm1' is unreachable \(PID (\d+) alive but agent unresponsive\); cleaning up\.\nMachine 'vm1' running \(PID: (\d+)\)\n$`)

	// startRecovers checks a start of the zombie whose record holds pid.
	startRecovers := func(t *testing.T, e *emu, pid int) {
		r := e.must("machine", "start", "-n", "vm1")
		m := restarted.FindStringSubmatch(r.stdout)
		if m == nil || r.stderr != "Starting machine 'vm1'...\n" {
			t.Fatalf("start of an unreachable machine: stdout %q stderr %q", r.stdout, r.stderr)
		}
		if m[1] != strconv.Itoa(pid) || m[2] == m[1] {
			t.Errorf("start: notice names pid %s, fresh pid %s; want %d and a new one", m[1], m[2], pid)
		}
		if vmmAlive(pid, "vm1", e.data) {
			t.Errorf("zombie VMM %d still alive after start", pid)
		}
		fresh, _ := strconv.Atoi(m[2])
		if s := e.status("vm1"); s["state"] != "running" || s["pid"] != float64(fresh) {
			t.Errorf("after start: state %v pid %v, want running/%d", s["state"], s["pid"], fresh)
		}
		// The fresh VMM's agent answers.
		e.must("machine", "exec", "--name", "vm1", "--", "true")
	}

	tests := []struct {
		name  string
		after func(t *testing.T, e *emu, pid int)
	}{
		{"start kills the zombie and boots afresh", startRecovers},
		{"stop kills the zombie", func(t *testing.T, e *emu, pid int) {
			want{stdout: notice(pid) + "Stopped machine: vm1\n"}.check(t, e.run("machine", "stop", "-n", "vm1"))
			if vmmAlive(pid, "vm1", e.data) {
				t.Errorf("zombie VMM %d still alive after stop", pid)
			}
			if s := e.status("vm1"); s["state"] != "stopped" || s["pid"] != nil {
				t.Errorf("after stop: state %v pid %v, want stopped/null", s["state"], s["pid"])
			}
		}},
		{"delete reaps it silently", func(t *testing.T, e *emu, pid int) {
			want{stdout: "Cleaning up data directory for vm: vm1\nDeleted machine: vm1\n"}.
				check(t, e.run("machine", "delete", "-n", "vm1", "-f"))
			if vmmAlive(pid, "vm1", e.data) {
				t.Errorf("zombie VMM %d still alive after delete", pid)
			}
		}},
		{"exec fails and marks it, which outlives the VMM", func(t *testing.T, e *emu, pid int) {
			want{code: 1, stderr: connect}.check(t, e.run("machine", "exec", "--name", "vm1", "--", "true"))
			src := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			want{code: 1, stderr: connect}.check(t, e.run("machine", "cp", src, "vm1:/f"))
			// Persisted: with its VMM dead too, it is still listed
			// unreachable (resolve_state does not probe a record that is
			// not running).
			e.must("__emu", "kill", "vm1")
			if s := e.status("vm1"); s["state"] != "unreachable" {
				t.Errorf("marked machine with a dead VMM: state %v, want unreachable", s["state"])
			}
			startRecovers(t, e, pid)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			e.must("machine", "create", "-n", "vm1")
			pid := e.start("vm1")
			e.must("__emu", "unreachable", "vm1")
			if s := e.status("vm1"); s["state"] != "unreachable" || s["pid"] != float64(pid) {
				t.Fatalf("after __emu unreachable: state %v pid %v, want unreachable/%d", s["state"], s["pid"], pid)
			}
			if !vmmAlive(pid, "vm1", e.data) {
				t.Fatalf("the zombie's VMM %d is not alive", pid)
			}
			want{stdout: "Machine 'vm1': unreachable\n"}.check(t, e.run("machine", "status", "-n", "vm1"))
			tt.after(t, e, pid)
		})
	}
}

func TestEmuUnreachableRefusals(t *testing.T) {
	e := newEmu(t)
	want{code: 1, stderr: "Error: vm not found: vm1\n"}.check(t, e.run("__emu", "unreachable", "vm1"))
	e.must("machine", "create", "-n", "vm1")
	want{code: 1, stderr: "Error: machine 'vm1' is not running\n"}.check(t, e.run("__emu", "unreachable", "vm1"))
}
