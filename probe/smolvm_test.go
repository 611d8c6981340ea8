package probe

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	smolvmdriver "github.com/bottle-reconcile/bottle-reconcile/drivers/smolvm"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// TestSmolvmGuestOnEmulator drives the probe's smolvm guest through the
// smolvm driver's CopyTo and Exec (machine cp, then machine exec) against
// the smolvm emulator, which follows the real CLI's parsing: the argv must
// be accepted as smolvm 1.9.2 accepts it, the copied file must run by its
// guest path, and smolvm must get no proxy variables.
// The emulator runs exec on the host, so this checks the plumbing, not
// isolation (TestSmolvmGuest does that against a real smolvm).
// Not parallel: it sets this process's environment.
func TestSmolvmGuestOnEmulator(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "smolvm")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/bottle-reconcile/bottle-reconcile/cmd/smolvm-emulator").CombinedOutput(); err != nil {
		t.Fatalf("build emulator: %v\n%s", err, out)
	}
	data := t.TempDir()
	t.Setenv("SMOLVM_DATA_DIR", data)
	t.Setenv("HTTPS_PROXY", "http://192.0.2.1:3128")
	t.Setenv("SMOLVM_EGRESS_FLOOR", "strict")
	smolvm := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("smolvm %q: %v\n%s", args, err, out)
		}
	}
	image := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(image, []byte("archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	smolvm("machine", "create", "--name", "bottle-p", "--image", image, "--allow-cidr", "10.77.0.2/32")
	smolvm("machine", "start", "--name", "bottle-p")
	t.Cleanup(func() { exec.Command(bin, "machine", "delete", "--name", "bottle-p", "-f").Run() })

	runner := filepath.Join(t.TempDir(), "runner")
	if err := os.WriteFile(runner, []byte("#!/bin/sh\necho \"ran $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	drv, err := smolvmdriver.New(logr.Discard(), smolvmdriver.Options{Binary: bin, NoHostLayer: true})
	if err != nil {
		t.Fatal(err)
	}
	g := driverGuest{d: drv, r: bottle.Resource{Name: "bottle-p"}, kind: spec.GuestSmolvm}
	ctx := context.Background()
	argv, err := g.install(ctx, runner)
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 1 {
		t.Fatalf("a script runner installed as %q, want the file alone", argv)
	}
	dst := argv[0]
	out, err := g.run(ctx, []string{dst, "probe-run", "-"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "ran probe-run -\n" {
		t.Errorf("runner printed %q", out)
	}
	if _, err := g.run(ctx, []string{"/nonexistent"}); err == nil || !strings.Contains(err.Error(), "exited 127") {
		t.Errorf("a failing command = %v, want its exit code", err)
	}

	raw, err := os.ReadFile(filepath.Join(data, "emu", "calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var argvs []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Args[1] != "cp" && (rec.Args[1] != "exec" || slices.Contains(rec.Args, "test")) {
			continue
		}
		argvs = append(argvs, strings.Join(rec.Args, " "))
		for _, kv := range rec.Env {
			if strings.HasPrefix(kv, "HTTPS_PROXY=") || strings.HasPrefix(kv, "SMOLVM_EGRESS_FLOOR=") {
				t.Errorf("smolvm %q saw %s", rec.Args, kv)
			}
		}
		if !slices.Contains(rec.Env, "SMOLVM_DATA_DIR="+data) {
			t.Errorf("smolvm %q did not get SMOLVM_DATA_DIR", rec.Args)
		}
	}
	want := []string{
		"machine cp --mode 755 " + runner + " bottle-p:" + dst,
		"machine exec --name bottle-p --stream -- " + dst + " probe-run -",
		"machine exec --name bottle-p --stream -- /nonexistent",
	}
	if !slices.Equal(argvs, want) {
		t.Errorf("smolvm calls\n%q\nwant\n%q", argvs, want)
	}
}
