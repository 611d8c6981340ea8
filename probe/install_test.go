package probe

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/elfdeps"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// dynamicBinary is a dynamically linked executable of this host, as a cgo
// build is: Debian's /bin/sh, with its loader and libraries.
func dynamicBinary(t *testing.T) (string, []elfdeps.File) {
	deps, err := elfdeps.Deps("/bin/sh")
	if err != nil || len(deps) == 0 {
		t.Fatalf("/bin/sh: %d deps, %v: want a dynamically linked binary to test with", len(deps), err)
	}
	return "/bin/sh", deps
}

// TestInstallDynamic: a dynamically linked runner goes in as one directory
// (runner, loader, libraries) and runs through that loader; the host's
// staging copy does not outlive the install.
func TestInstallDynamic(t *testing.T) {
	bin, deps := dynamicBinary(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	g := &fakeGuests{dirs: []string{"/"}, files: map[string][]string{}}
	gu := driverGuest{d: g, r: bottle.Resource{Name: "bottle-a"}, kind: spec.GuestDocker}
	argv, err := gu.install(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 4 {
		t.Fatalf("installed as %q, want the loader running the runner", argv)
	}
	dir := path.Dir(argv[0])
	if !strings.HasPrefix(dir, "/bottle-probe-") {
		t.Fatalf("installed in %s, want /bottle-probe-* (no /tmp in this guest)", dir)
	}
	want := []string{dir + "/ld.so", "--library-path", dir + "/lib", dir + "/runner"}
	if !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
	files := []string{dir + "/runner", dir + "/ld.so"}
	for _, d := range deps {
		if !d.Loader {
			files = append(files, dir+"/lib/"+filepath.Base(d.Path))
		}
	}
	got := g.files["bottle-a"]
	slices.Sort(got)
	slices.Sort(files)
	if !slices.Equal(got, files) {
		t.Errorf("copied %q, want %q", got, files)
	}
	if out, err := gu.run(context.Background(), append(argv, "probe-run", "-")); err != nil || !strings.HasPrefix(string(out), "ran --library-path") {
		t.Errorf("run = %q, %v", out, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("staging left behind in TMPDIR: %v", left)
	}
}

// TestStagedRunnerRuns: the layout a guest gets runs on this host with the
// real loader, with the runner's arguments passed through.
func TestStagedRunnerRuns(t *testing.T) {
	bin, deps := dynamicBinary(t)
	dir := filepath.Join(t.TempDir(), installName())
	if err := stage(dir, bin, deps); err != nil {
		t.Fatal(err)
	}
	argv := append(runnerCommand(dir, true), "-c", "echo ran $0")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ran "+filepath.Join(dir, "runner") {
		t.Errorf("%q: %q, %v", argv, out, err)
	}
	if got := runnerCommand("/tmp/x", false); !slices.Equal(got, []string{"/tmp/x"}) {
		t.Errorf("a static runner runs as %q", got)
	}
}

// TestInstalledDir: the runner removes its directory only when it runs as
// the runner of one, through the loader beside it.
func TestInstalledDir(t *testing.T) {
	tests := []struct {
		exe, argv0, want string
	}{
		{"/tmp/bottle-probe-1a2b/ld.so", "/tmp/bottle-probe-1a2b/runner", "/tmp/bottle-probe-1a2b"},
		{"/bottle-probe-1a2b/ld.so", "/bottle-probe-1a2b//runner", "/bottle-probe-1a2b"},
		{"/tmp/bottle-probe-1a2b", "/tmp/bottle-probe-1a2b", ""},              // static: the file alone
		{"/lib64/ld.so", "/lib64/runner", ""},                                 // not an install directory
		{"/tmp/bottle-probe-1a2b/ld.so", "/tmp/bottle-probe-9z9z/runner", ""}, // another's loader
		{"/tmp/bottle-probe-1a2b/ld.so", "/tmp/bottle-probe-1a2b/ld.so", ""},  // the loader run alone
	}
	for _, tt := range tests {
		if got := installedDir(tt.exe, tt.argv0); got != tt.want {
			t.Errorf("installedDir(%s, %s) = %q, want %q", tt.exe, tt.argv0, got, tt.want)
		}
	}
}
