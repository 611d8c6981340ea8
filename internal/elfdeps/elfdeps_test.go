package elfdeps

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// staticBinary builds a tiny Go program without cgo: a static binary.
func staticBinary(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module static\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "static", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "static")
}

func TestDeps(t *testing.T) {
	if deps, err := Deps(staticBinary(t)); err != nil || len(deps) != 0 {
		t.Errorf("Deps(static build) = %d files, %v; want none", len(deps), err)
	}
	// /bin/sh on Debian needs the dynamic loader and libc, like a cgo build.
	deps, err := Deps("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := elf.Open("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	interp, _ := interpreter(sh)
	sh.Close()
	var paths, loaders []string
	for _, d := range deps {
		paths = append(paths, d.Path)
		if d.Loader {
			loaders = append(loaders, d.Path)
		}
		if f, err := elf.NewFile(bytes.NewReader(d.Data)); err != nil {
			t.Errorf("%s: not an ELF file: %v", d.Path, err)
		} else {
			f.Close()
		}
	}
	got := strings.Join(paths, " ")
	if !strings.Contains(" "+got+" ", " "+interp+" ") || !strings.Contains(got, "/libc.so.6") {
		t.Errorf("Deps(/bin/sh) = %s; want its interpreter %s and libc", got, interp)
	}
	if len(loaders) != 1 || loaders[0] != interp {
		t.Errorf("Deps(/bin/sh) marks %q the loader, want [%s]", loaders, interp)
	}
	if _, err := Deps("/nonexistent"); err == nil {
		t.Error("Deps(/nonexistent) = nil error")
	}
}
