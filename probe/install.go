package probe

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/internal/elfdeps"
)

// A dynamically linked runner (a default cgo build, as `go install` makes)
// needs the host's loader and libraries, which a guest need not have (a
// FROM scratch image has none). It goes in as one directory holding the
// runner, its loader and its libraries, and runs through that loader,
// which runs a program given as its argument: DIR/ld.so --library-path
// DIR/lib DIR/runner. A static runner goes in alone.
const (
	installPrefix = "bottle-probe-"
	runnerName    = "runner"
	loaderName    = "ld.so"
	libDir        = "lib"
)

// installName is the runner's file or directory name inside a guest; a
// random suffix keeps two concurrent probes apart.
func installName() string { return installPrefix + NewToken()[:8] }

// runnerDeps returns the loader and libraries the runner binary needs:
// none for a static binary, nor for a file that is no ELF binary at all
// (a script, which the guest runs as it is).
func runnerDeps(binary string) ([]elfdeps.File, error) {
	f, err := os.Open(binary)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, len(elf.ELFMAG))
	_, err = io.ReadFull(f, magic)
	f.Close()
	if err != nil || string(magic) != elf.ELFMAG {
		return nil, nil
	}
	return elfdeps.Deps(binary)
}

// stage lays the runner binary and deps (its loader and libraries, from
// elfdeps.Deps) out in the new host directory dir, as the guest gets it.
func stage(dir, binary string, deps []elfdeps.File) error {
	if err := os.MkdirAll(filepath.Join(dir, libDir), 0o755); err != nil {
		return err
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, runnerName), bin, 0o755); err != nil {
		return err
	}
	seen := map[string]string{}
	for _, d := range deps {
		name := filepath.Join(libDir, filepath.Base(d.Path))
		if d.Loader {
			name = loaderName
		}
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("libraries %s and %s share a file name; build the runner with CGO_ENABLED=0", prev, d.Path)
		}
		seen[name] = d.Path
		if err := os.WriteFile(filepath.Join(dir, name), d.Data, 0o755); err != nil {
			return err
		}
	}
	if _, ok := seen[loaderName]; !ok {
		return fmt.Errorf("no ELF interpreter among its %d libraries", len(deps))
	}
	return nil
}

// runnerCommand is the argv that runs the runner installed at dst: the
// file itself, or the directory's runner through its loader.
func runnerCommand(dst string, dynamic bool) []string {
	if !dynamic {
		return []string{dst}
	}
	return []string{path.Join(dst, loaderName), "--library-path", path.Join(dst, libDir), path.Join(dst, runnerName)}
}

// installedDir returns the directory a dynamic runner was installed as,
// when this process is one: its executable is the loader, and its argv[0]
// the runner beside it. Otherwise "".
func installedDir(exe, argv0 string) string {
	dir := filepath.Dir(exe)
	if filepath.Base(exe) != loaderName || filepath.Clean(argv0) != filepath.Join(dir, runnerName) ||
		!strings.HasPrefix(filepath.Base(dir), installPrefix) {
		return ""
	}
	return dir
}

// removeSelf deletes the installed runner: the whole directory of a
// dynamic one, else the binary itself.
func removeSelf() {
	self, err := os.Executable()
	if err != nil {
		return
	}
	if dir := installedDir(self, os.Args[0]); dir != "" {
		_ = os.RemoveAll(dir)
		return
	}
	_ = os.Remove(self)
}
