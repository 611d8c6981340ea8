package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Behaviours from the reference's "Corrections" (smolvm a5df5001, v1.9.2).

func TestArchiveImageIsLocalHash(t *testing.T) {
	e := newEmu(t)
	archive := filepath.Join(t.TempDir(), "img.tar")
	content := []byte("docker save bytes")
	if err := os.WriteFile(archive, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])
	e.must("machine", "create", "-n", "vm1", "-I", archive)
	// stdin archives are hashed the same way.
	if r := e.runWith(nil, string(content), "machine", "create", "-n", "vm2", "-I", "-"); r.code != 0 {
		t.Fatalf("create from stdin: %+v", r)
	}
	for _, name := range []string{"vm1", "vm2"} {
		if got := e.status(name)["image"]; got != "local:"+hash {
			t.Errorf("%s image = %v, want local:%s (image_source.rs 303)", name, got, hash)
		}
	}
	staged := filepath.Join(e.data, ".cache", "smolvm-image-archives", hash, "archive.tar")
	if b, err := os.ReadFile(staged); err != nil || string(b) != string(content) {
		t.Fatalf("staged copy %s: %q, %v", staged, b, err)
	}
	// smolvm boots from its own copy: the original may go away.
	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	e.start("vm1")
}

func TestRegistryPullUnderEgressPolicy(t *testing.T) {
	denied := want{code: 1, stderr: "Starting machine 'vm1'...\nPulling alpine:3.20...\n" +
		`Error: agent operation failed: pull image: crane manifest failed: Error: fetching manifest alpine:3.20: Get "https://index.docker.io/v2/": dial tcp index.docker.io:443: i/o timeout` + "\n"}
	tests := []struct {
		name    string
		create  []string
		env     []string
		startOK bool
	}{
		{"allow-cidr only: pull denied", []string{"--allow-cidr", "10.77.0.2/32"}, nil, false},
		{"allow-host widens for the pull", []string{"--allow-cidr", "10.77.0.2/32", "--allow-host", "api.example"}, nil, true},
		{"no policy", []string{"--net"}, nil, true},
		{"allow-all cidr", []string{"--allow-cidr", "0.0.0.0/0"}, nil, true},
		{"smolvm's own HTTPS_PROXY inside the allow-list", []string{"--allow-cidr", "10.77.0.2/32"}, []string{"HTTPS_PROXY=http://10.77.0.2:3128"}, true},
		{"smolvm's own proxy outside the allow-list", []string{"--allow-cidr", "10.77.0.2/32"}, []string{"https_proxy=http://192.0.2.1:3128"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			e.env = append([]string{"SMOLVM_EMU_RESOLVE=api.example=192.0.2.9"}, tt.env...)
			e.must(append([]string{"machine", "create", "-n", "vm1", "-I", "alpine:3.20"}, tt.create...)...)
			r := e.run("machine", "start", "-n", "vm1")
			if tt.startOK {
				if r.code != 0 {
					t.Fatalf("start: %+v", r)
				}
				return
			}
			denied.check(t, r)
			if m := e.status("vm1"); m["state"] != "created" || m["pid"] != nil {
				t.Errorf("after a failed pull: state %v pid %v, want created/null", m["state"], m["pid"])
			}
		})
	}
}

func TestFrozenRefusesStart(t *testing.T) {
	e := newEmu(t)
	e.must("machine", "create", "-n", "vm1")
	e.start("vm1")
	e.must("__emu", "freeze", "vm1")
	if got := e.status("vm1")["state"]; got != "frozen" {
		t.Fatalf("state = %v, want frozen", got)
	}
	want{code: 1, stderr: "Error: agent operation failed: start: 'vm1' is frozen because it retains a reusable fork checkpoint; stop it before restarting, or fork it again\n"}.
		check(t, e.run("machine", "start", "-n", "vm1"))
	// Stop kills the paused VMM (vm_common.rs ~1970-1988); then it starts.
	want{stdout: "Stopping machine 'vm1'...\nStopped machine: vm1\n"}.check(t, e.run("machine", "stop", "-n", "vm1"))
	e.start("vm1")
}

func TestHealthCmdIsStringOrNull(t *testing.T) {
	e := newEmu(t)
	e.must("machine", "create", "-n", "vm1")
	r := e.must("machine", "ls", "--json")
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("ls --json: %v %s", err, r.stdout)
	}
	var s *string
	if err := json.Unmarshal(rows[0]["health_cmd"], &s); err != nil || s != nil {
		t.Errorf("health_cmd = %s, want null (a string when set)", rows[0]["health_cmd"])
	}
}

func TestCallsRecordEnvironment(t *testing.T) {
	e := newEmu(t)
	e.env = []string{"MARKER=seen"}
	e.must("machine", "ls", "--json")
	f, err := os.Open(filepath.Join(e.data, "emu", "calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		t.Fatal("no call recorded")
	}
	var rec callRecord
	if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rec.Env, "MARKER=seen") || !slices.Contains(rec.Env, "SMOLVM_DATA_DIR="+e.data) {
		t.Errorf("recorded env %q lacks what the call saw", rec.Env)
	}
	if !slices.IsSorted(rec.Env) || strings.Join(rec.Args, " ") != "machine ls --json" {
		t.Errorf("record %+v", rec)
	}
}
