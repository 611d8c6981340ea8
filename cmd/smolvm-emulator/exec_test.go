package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExec(t *testing.T) {
	e := newEmu(t)
	e.env = []string{"FWD=host-value", "SECRET_HOST_ONLY=leak"}
	e.must("machine", "create", "-n", "vm1", "-e", "A=machine", "-e", "B=machine", "-e", "FWD")
	notRunning := want{code: 1, stderr: "Error: agent operation failed: connect: machine 'vm1' is not running. Use 'smolvm machine start --name vm1' first.\n"}
	notRunning.check(t, e.run("machine", "exec", "--name", "vm1", "--", "true"))
	e.start("vm1")

	tests := []struct {
		name string
		args []string
		want want
	}{
		{"stdout and exit code", []string{"--name", "vm1", "--", "sh", "-c", "echo out; echo err >&2; exit 3"},
			want{code: 3, stdout: "out\n", stderr: "err\n"}},
		{"guest exit 1 has no Error prefix", []string{"--name", "vm1", "--", "false"}, want{code: 1}},
		{"machine env, exec -e wins", []string{"--name", "vm1", "-e", "B=exec", "--", "sh", "-c", `echo "$A $B $FWD [$SECRET_HOST_ONLY]"`},
			want{stdout: "machine exec host-value []\n"}},
		{"workdir inside rootfs", []string{"--name", "vm1", "-w", "/work", "--", "sh", "-c", `test "$PWD" = "$SMOLVM_EMU_ROOTFS/work" && echo ok`},
			want{stdout: "ok\n"}},
		{"timeout gives 124", []string{"--name", "vm1", "--timeout", "200ms", "--", "sleep", "10"}, want{code: 124}},
		{"no -n short form", []string{"-n", "vm1", "--", "true"},
			want{code: 2, stderr: "error: unexpected argument '-n' found\n", stderrPrefix: true}},
		// trailing_var_arg: "--" is optional, and flags after the command
		// are the command's (vm_common.rs 2628-2632).
		{"-- is optional", []string{"--name", "vm1", "sh", "-c", "echo no-dashes"}, want{stdout: "no-dashes\n"}},
		{"fractional timeout refused", []string{"--name", "vm1", "--timeout", "1.5s", "--", "true"},
			want{code: 2, stderr: "error: invalid value '1.5s' for '--timeout <DURATION>': ", stderrPrefix: true}},
		{"zero timeout refused", []string{"--name", "vm1", "--timeout", "0s", "--", "true"},
			want{code: 2, stderr: "error: invalid value '0s' for '--timeout <DURATION>': timeout must be greater than 0 (e.g., 5sec, 30s)\n", stderrPrefix: true}},
		{"compound timeout", []string{"--name", "vm1", "--timeout", "1m30s", "--", "true"}, want{}},
		{"name defaults to default", []string{"true"},
			want{code: 1, stderr: "Error: vm not found: default\n"}},
		{"missing binary", []string{"--name", "vm1", "--", "/nonexistent/bin"},
			want{code: 127, stderr: "exec failed: fork/exec /nonexistent/bin: no such file or directory\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.check(t, e.run(append([]string{"machine", "exec"}, tt.args...)...))
		})
	}
	e.must("machine", "stop", "-n", "vm1")
	notRunning.check(t, e.run("machine", "exec", "--name", "vm1", "--", "true"))
}

func TestCp(t *testing.T) {
	e := newEmu(t)
	e.must("machine", "create", "-n", "vm1")
	src := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(src, []byte("payload\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want{code: 1, stderr: "Error: agent operation failed: connect: machine 'vm1' is not running. Use 'smolvm machine start --name vm1' first.\n"}.
		check(t, e.run("machine", "cp", src, "vm1:/etc/in.txt"))
	e.start("vm1")

	want{}.check(t, e.run("machine", "cp", "--mode", "600", src, "vm1:/etc/in.txt"))
	guest := filepath.Join(e.data, "emu", "rootfs", "vm1", "etc", "in.txt")
	if st, err := os.Stat(guest); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("guest file: %v %v", st, err)
	}
	want{stdout: "payload\n"}.check(t, e.run("machine", "exec", "--name", "vm1", "--", "cat", "etc/in.txt"))

	out := filepath.Join(t.TempDir(), "out.txt")
	want{}.check(t, e.run("machine", "cp", "vm1:/etc/in.txt", out))
	if b, err := os.ReadFile(out); err != nil || string(b) != "payload\n" {
		t.Errorf("download = %q, %v", b, err)
	}
	// The local path is File::create'd: a directory there is an error
	// (src/agent/client.rs 2239-2244), and nothing lands inside it.
	outDir := t.TempDir()
	want{code: 1, stderr: "Error: agent operation failed: write local file: " + outDir + ": Is a directory (os error 21)\n"}.
		check(t, e.run("machine", "cp", "vm1:/etc/in.txt", outDir))
	if _, err := os.Stat(filepath.Join(outDir, "in.txt")); err == nil {
		t.Error("a download to a directory was put inside it")
	}
	// ".." cannot leave the rootfs stand-in.
	want{}.check(t, e.run("machine", "cp", src, "vm1:/../../escape.txt"))
	if _, err := os.Stat(filepath.Join(e.data, "emu", "escape.txt")); err == nil {
		t.Error("cp escaped the rootfs dir")
	}
	want{code: 1, stderr: "Error: config operation failed: cp: one of SRC or DST must use machine:path syntax (e.g., myvm:/workspace/file)\n"}.
		check(t, e.run("machine", "cp", src, out))
	// --mode/--uid/--gid are upload-only (src/cli/machine.rs 4939-4944).
	for _, flag := range []string{"--mode", "--uid", "--gid"} {
		want{code: 1, stderr: "Error: config operation failed: cp: --mode/--uid/--gid apply to uploads only (host -> machine)\n"}.
			check(t, e.run("machine", "cp", flag, "644", "vm1:/etc/in.txt", out))
	}
	want{code: 1, stderr: "Error: config operation failed: cp: invalid octal mode '9' (expected e.g. 644)\n"}.
		check(t, e.run("machine", "cp", "--mode", "9", src, "vm1:/etc/in.txt"))
	// A binary put in with cp runs by its guest path.
	script := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho from-guest-path\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want{}.check(t, e.run("machine", "cp", "--mode", "755", script, "vm1:/tmp/hello"))
	want{stdout: "from-guest-path\n"}.check(t, e.run("machine", "exec", "--name", "vm1", "/tmp/hello"))
	e.must("machine", "stop", "-n", "vm1")
	want{code: 1, stderr: "Error: agent operation failed: connect: machine 'vm1' is not running. Use 'smolvm machine start --name vm1' first.\n"}.
		check(t, e.run("machine", "cp", "vm1:/etc/in.txt", out))
	want{code: 1, stderr: "Error: vm not found: nope\n"}.check(t, e.run("machine", "cp", src, "nope:/x"))
}
