package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A binary built from this repository names its commit.
func TestVersionNamesTheCommit(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "bottle-reconcile")
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"--version", "version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if got := string(out); !strings.HasPrefix(got, "bottle-reconcile ") || !strings.Contains(got, strings.TrimSpace(string(head))) {
			t.Errorf("%s printed %q, want the commit %s", arg, got, head)
		}
	}
}
