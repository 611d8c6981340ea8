package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// -v HOST:GUEST[:ro|:rw] as HostMount::parse takes it (CONTRACT.md): refused
// with smolvm's texts, exit 1, nothing stored.
func TestVolumeErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	toEtc := filepath.Join(dir, "to-etc")
	if err := os.Symlink("/etc", toEtc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, v, stderr string
	}{
		{"no guest path", dir, "Error: invalid mount path: invalid format '" + dir + "' (expected host:guest[:ro|:rw])\n"},
		{"empty guest path", dir + ":", "Error: invalid mount path: invalid format '" + dir + ":' (expected host:guest[:ro|:rw])\n"},
		{"missing source", "/nonexistent-7f3a:/data", "Error: mount source not found: /nonexistent-7f3a\n"},
		{"a file", file + ":/data", "Error: mount operation failed: validate host path: source path on host must be a directory (virtiofs limitation): " + file + "\n"},
		{"protected", "/etc:/data", "Error: mount operation failed: validate host path: source path on host is a protected system path and cannot be mounted: /etc\n"},
		{"protected through a symlink", toEtc + ":/data:ro", "Error: mount operation failed: validate host path: source path on host is a protected system path and cannot be mounted: /etc\n"},
		{"var itself", "/var:/data", "Error: mount operation failed: validate host path: source path on host is a protected system path and cannot be mounted: /var\n"},
		{"relative guest", dir + ":data", "Error: mount operation failed: validate guest path: target path on guest should be an absolute directory: data\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			want{code: 1, stderr: tt.stderr}.check(t, e.run("machine", "create", "-n", "vm", "-v", tt.v))
			want{code: 0, stdout: "[]\n"}.check(t, e.run("machine", "ls", "--json"))
		})
	}
	e := newEmu(t)
	want{code: 1, stderr: "Error: mount operation failed: validate mounts: duplicate mount target: /data is specified more than once\n"}.
		check(t, e.run("machine", "create", "-n", "vm", "-v", dir+":/data", "-v", dir+":/data:ro"))
}

// Accepted mounts are stored as smolvm stores them, (canonical host path,
// guest path, read-only), counted in the create output and in ls --json,
// and listed by ls -v.
func TestVolumeRecorded(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	e := newEmu(t)
	r := e.must("machine", "create", "-n", "vm", "-v", link+":/work:ro", "-v", dir+":/src:rw", "-v", dir+":/more")
	want{stdout: "Created machine: vm\n  CPUs: 4, Memory: 8192 MiB\n  Mounts: 3\n\nStart it with: smolvm machine start --name vm\n"}.check(t, r)
	if m := e.status("vm"); m["mounts"] != float64(3) {
		t.Errorf("ls --json mounts = %v, want 3", m["mounts"])
	}
	b, err := os.ReadFile(filepath.Join(e.data, ".local", "share", "smolvm", "emu", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Machines map[string]struct {
			Mounts [][]any `json:"mounts"`
		} `json:"machines"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	wantMounts := [][]any{{dir, "/work", true}, {dir, "/src", false}, {dir, "/more", false}}
	if got := st.Machines["vm"].Mounts; !reflect.DeepEqual(got, wantMounts) {
		t.Errorf("stored mounts %v, want %v", got, wantMounts)
	}
	ls := e.must("machine", "ls", "-v").stdout
	for _, line := range []string{"  Mount: " + dir + " -> /work (ro)\n", "  Mount: " + dir + " -> /src\n"} {
		if !strings.Contains(ls, line) {
			t.Errorf("ls -v lacks %q:\n%s", line, ls)
		}
	}
}
