package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withWorkspace is the valid document with a spec.workspace block.
func withWorkspace(host, guest string, extra ...string) string {
	lines := []string{"workspace:", "  hostPath: " + host, "  guestPath: " + guest}
	for _, e := range extra {
		lines = append(lines, "  "+e)
	}
	return withSpec(lines...)
}

// What the file alone shows is refused by Parse, wherever it runs.
func TestWorkspaceRefusedAsWritten(t *testing.T) {
	cwd, err := os.Getwd() // the spec directory of "f.yaml"
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc, want string
	}{
		{"host relative", withWorkspace("work", "/work"), "f.yaml:8:15: spec.workspace.hostPath: must be an absolute path"},
		{"host root", withWorkspace("/", "/work"), "spec.workspace.hostPath: must not be / (the whole filesystem)"},
		{"host root spelt twice", withWorkspace("//", "/work"), "spec.workspace.hostPath: must not be /"},
		{"host root with dots", withWorkspace("/srv/..", "/work"), `spec.workspace.hostPath: "/srv/.." is the whole filesystem`},
		{"host colon", withWorkspace(`"/srv/a:b"`, "/work"), "without ':'"},
		{"host missing", withSpec("workspace:", "  guestPath: /work"), `spec.workspace: missing required field "hostPath"`},
		{"guest missing", withSpec("workspace:", "  hostPath: /srv/w"), `spec.workspace: missing required field "guestPath"`},
		{"guest relative", withWorkspace("/srv/w", "work"), "f.yaml:9:16: spec.workspace.guestPath: must be an absolute path"},
		{"guest root", withWorkspace("/srv/w", "/"), "spec.workspace.guestPath: must not be /"},
		{"guest root with dots", withWorkspace("/srv/w", "/a/.."), `spec.workspace.guestPath: "/a/.." is the whole filesystem`},
		{"readOnly string", withWorkspace("/srv/w", "/work", `readOnly: "yes"`), "spec.workspace.readOnly: expected boolean"},
		{"unknown field", withWorkspace("/srv/w", "/work", "readonly: true"), "spec.workspace.readonly: unknown field; did you mean readOnly?"},
		{"docker socket", withWorkspace("/var/run/docker.sock", "/work"), "/var/run/docker.sock is /var/run/docker.sock, which is the Docker socket"},
		{"docker socket in run", withWorkspace("/run/docker.sock", "/work"), "is the Docker socket"},
		{"containerd", withWorkspace("/run/containerd", "/work"), "is /run/containerd, which holds containerd's socket"},
		{"docker data", withWorkspace("/var/lib/docker", "/work"), "is /var/lib/docker, which is Docker's data directory"},
		{"inside docker data", withWorkspace("/var/lib/docker/volumes/x", "/work"), "is inside /var/lib/docker"},
		{"containerd data", withWorkspace("/var/lib/containerd", "/work"), "is /var/lib/containerd, which is containerd's data directory"},
		{"proc", withWorkspace("/proc", "/work"), "is /proc, which is the host's process table"},
		{"inside proc", withWorkspace("/proc/1/root", "/work"), "is inside /proc"},
		{"sys", withWorkspace("/sys/fs/cgroup", "/work"), "is inside /sys"},
		{"dev", withWorkspace("/dev", "/work"), "is /dev, which holds the host's devices"},
		{"etc", withWorkspace("/etc/ssh", "/work"), "is inside /etc, which is the host's configuration"},
		{"boot", withWorkspace("/boot", "/work"), "is /boot"},
		{"parent of docker data", withWorkspace("/var/lib", "/work"), "/var/lib holds /var/lib/docker"},
		{"parent of everything in var", withWorkspace("/var", "/work"), "/var holds /var/run/docker.sock"},
		{"state root", withWorkspace("/var/lib/bottle-reconcile/x", "/work"), "is inside /var/lib/bottle-reconcile, which is where bottle-reconcile keeps its state"},
		{"smolvm's list", withWorkspace("/usr/local/src", "/work"), "is inside /usr"},
		{"trailing slash cleaned", withWorkspace("/etc/", "/work"), "/etc is /etc"},
		{"spec directory", withWorkspace(cwd, "/work"), "is the spec directory " + cwd},
		{"inside spec directory", withWorkspace(filepath.Join(cwd, "testdata"), "/work"), "is inside the spec directory " + cwd},
		{"above spec directory", withWorkspace(filepath.Dir(cwd), "/work"), "holds the spec directory " + cwd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRefused(t, tt.doc, tt.want) })
	}
}

// What only the host shows is refused by a load on the host, and listed
// as not checked by an offline one.
func TestWorkspaceRefusedOnHost(t *testing.T) {
	root := t.TempDir()
	specs := filepath.Join(root, "specs")
	state := filepath.Join(root, "state")
	work := filepath.Join(root, "work")
	for _, d := range []string{specs, state, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := func(name, to string) string {
		p := filepath.Join(root, name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	toEtc := link("to-etc", "/etc")
	toSpecs := link("to-specs", specs)
	toRoot := link("to-root", root)
	inst := filepath.Join(state, "inst")
	if err := os.MkdirAll(filepath.Join(inst, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	toState := link("to-state", filepath.Join(inst, "sub"))
	missing := filepath.Join(root, "missing")

	tests := []struct {
		name, host, want string
	}{
		{"missing", missing, missing + " does not exist on this host; create the directory (mkdir -p " + missing + ")"},
		{"a file", file, file + " is not a directory"},
		{"symlink to /etc", toEtc, toEtc + " leads to /etc, which is /etc, which is the host's configuration"},
		{"symlink to the spec directory", toSpecs, "leads to " + specs + ", which is the spec directory"},
		{"symlink to a parent of the spec directory", toRoot, "leads to " + root + ", which holds the spec directory"},
		{"state directory", inst, inst + " is the state directory " + inst},
		{"inside the state directory", filepath.Join(inst, "sub"), "is inside the state directory"},
		{"symlink into the state directory", toState, "leads to " + filepath.Join(inst, "sub") + ", which is inside the state directory"},
		{"parent of the state directory", state, state + " holds the state directory " + inst},
		{"parent of the spec directory", root, root + " holds the spec directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(specs, "a.yaml")
			if err := os.WriteFile(f, []byte(withWorkspace(tt.host, "/work")), 0o644); err != nil {
				t.Fatal(err)
			}
			r := LoadFiles([]string{f}, Options{StateDir: inst})
			if len(r.Bottles) != 0 || r.Held["alice"] == "" {
				t.Fatalf("accepted (bottles %d, held %q)", len(r.Bottles), r.Held)
			}
			var all []string
			for _, p := range r.Problems {
				all = append(all, p.String())
			}
			text := strings.Join(all, "\n")
			if !strings.Contains(text, f+":8:15: spec.workspace.hostPath: ") || !strings.Contains(text, tt.want) {
				t.Fatalf("problems do not point at hostPath saying %q:\n%s", tt.want, text)
			}

			// Offline, only what the file shows counts (root holds the
			// spec directory as written).
			r = LoadFiles([]string{f}, Options{Offline: true})
			if r.OK() == (tt.host == root) {
				t.Fatalf("offline load: ok %v: %v", r.OK(), r.Problems)
			}
		})
	}

	// A directory of its own is accepted, cleaned, and re-checked on every
	// load through a cache: one that goes away is refused next time.
	f := filepath.Join(specs, "a.yaml")
	if err := os.WriteFile(f, []byte(withWorkspace(work+"/", "/work/", "readOnly: true")), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := NewCache()
	r := LoadFiles([]string{f}, Options{StateDir: inst, Cache: cache})
	if !r.OK() || len(r.Bottles) != 1 {
		t.Fatalf("refused: %v", r.Problems)
	}
	if w := r.Bottles[0].Spec.Workspace; *w != (Workspace{HostPath: work, GuestPath: "/work", ReadOnly: true}) {
		t.Errorf("workspace = %+v", *w)
	}
	if err := os.Remove(work); err != nil {
		t.Fatal(err)
	}
	if r := LoadFiles([]string{f}, Options{StateDir: inst, Cache: cache}); r.OK() || len(r.Bottles) != 0 {
		t.Fatal("a workspace that went away is still accepted")
	}
}

// Offline, a workspace the host would have to show is valid, with a note
// at its hostPath that says what was not checked.
func TestWorkspaceOffline(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(f, []byte(withWorkspace("/srv/bottles/alice/work", "/work")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := LoadFiles([]string{f}, Options{Offline: true})
	if !r.OK() || len(r.Bottles) != 1 {
		t.Fatalf("refused offline: %v", r.Problems)
	}
	if len(r.Unchecked) != 1 || !strings.HasPrefix(r.Unchecked[0].String(), f+":8:15: spec.workspace.hostPath: not checked here: whether /srv/bottles/alice/work exists") {
		t.Fatalf("unchecked = %v", r.Unchecked)
	}
	// On the host the same file is refused: the directory is not there.
	if r := LoadFiles([]string{f}, Options{}); r.OK() || len(r.Unchecked) != 0 {
		t.Fatalf("host load: ok %v, unchecked %v", r.OK(), r.Unchecked)
	}
}

// The example spec is valid on a host where its workspace exists: here a
// temp dir stands in for /srv/bottles/carol/work.
func TestWorkspaceExample(t *testing.T) {
	data, err := os.ReadFile("../specs/workspace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const host = "/srv/bottles/carol/work"
	if !strings.Contains(string(data), "hostPath: "+host+"\n") {
		t.Fatalf("the example no longer mounts %s", host)
	}
	work := t.TempDir()
	f := filepath.Join(t.TempDir(), "workspace.yaml")
	if err := os.WriteFile(f, []byte(strings.Replace(string(data), host, work, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := LoadFiles([]string{f}, Options{})
	if !r.OK() || len(r.Bottles) != 1 {
		t.Fatalf("example refused on a host that has its workspace: %v", r.Problems)
	}
	if w := r.Bottles[0].Spec.Workspace; *w != (Workspace{HostPath: work, GuestPath: "/work"}) {
		t.Errorf("workspace = %+v", *w)
	}
}
