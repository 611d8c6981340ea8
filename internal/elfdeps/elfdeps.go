// Package elfdeps lists what the dynamic loader needs to run an ELF
// binary, read from its headers alone, so a dynamically linked build can be
// carried, with its loader and libraries, where the host's libc is not.
package elfdeps

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File is one file the loader needs: where it is on this host (the path the
// loader looks for it at) and its contents, those of the file a link there
// resolves to.
type File struct {
	Path string
	Data []byte
	// Loader marks the ELF interpreter, the dynamic loader itself.
	Loader bool
}

// Deps returns what the dynamic loader needs to run the ELF binary at path:
// its interpreter (PT_INTERP), at the path the kernel asks for, and every
// shared library it needs, transitively, each at the host path it is found
// at, sorted by path. A static binary needs nothing. It reads files only:
// running the host's ldd would run the binary's own loader.
func Deps(path string) ([]File, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	interp, err := interpreter(f)
	if err != nil || interp == "" {
		return nil, err
	}
	data, err := os.ReadFile(interp)
	if err != nil {
		return nil, fmt.Errorf("read its ELF interpreter %s: %w", interp, err)
	}
	out := []File{{Path: interp, Data: data, Loader: true}}
	dirs := searchDirs(f, interp)
	seen := map[string]bool{}
	queue := []*elf.File{f}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		needed, err := cur.ImportedLibraries()
		if err != nil {
			return nil, fmt.Errorf("read needed libraries: %w", err)
		}
		for _, name := range needed {
			if seen[name] {
				continue
			}
			seen[name] = true
			lib, libPath, err := findLib(name, dirs, f)
			if err != nil {
				return nil, err
			}
			data, err := os.ReadFile(libPath)
			if err != nil {
				lib.Close()
				return nil, fmt.Errorf("read library %s: %w", libPath, err)
			}
			if libPath != interp {
				out = append(out, File{Path: libPath, Data: data})
			}
			defer lib.Close()
			queue = append(queue, lib)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// interpreter returns the binary's PT_INTERP, or "" for a static binary.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("read its ELF interpreter path: %w", err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}

// searchDirs lists where the loader looks for libraries, in its order: the
// binary's RPATH/RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.conf, the
// interpreter's own directory and the usual system directories.
func searchDirs(f *elf.File, interp string) []string {
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RPATH, elf.DT_RUNPATH} {
		if vals, err := f.DynString(tag); err == nil {
			for _, v := range vals {
				dirs = append(dirs, filepath.SplitList(v)...)
			}
		}
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("LD_LIBRARY_PATH"))...)
	dirs = append(dirs, ldSoConf("/etc/ld.so.conf", 0)...)
	if real, err := filepath.EvalSymlinks(interp); err == nil {
		d := filepath.Dir(real)
		dirs = append(dirs, d, filepath.Join("/usr", d))
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// ldSoConf reads the directories of an ld.so.conf and the files it includes.
func ldSoConf(path string, depth int) []string {
	file, err := os.Open(path)
	if err != nil || depth > 4 {
		return nil
	}
	defer file.Close()
	var dirs []string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "include"); ok && rest != strings.TrimLeft(rest, " \t") {
			pattern := strings.TrimSpace(rest)
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(path), pattern)
			}
			matches, _ := filepath.Glob(pattern)
			sort.Strings(matches)
			for _, m := range matches {
				dirs = append(dirs, ldSoConf(m, depth+1)...)
			}
			continue
		}
		if line != "" {
			dirs = append(dirs, line)
		}
	}
	return dirs
}

// findLib finds a needed library of the same class and machine as bin.
func findLib(name string, dirs []string, bin *elf.File) (*elf.File, string, error) {
	if strings.Contains(name, "/") {
		dirs, name = []string{filepath.Dir(name)}, filepath.Base(name)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		lib, err := elf.Open(p)
		if err != nil {
			continue
		}
		if lib.Class == bin.Class && lib.Machine == bin.Machine {
			return lib, p, nil
		}
		lib.Close()
	}
	return nil, "", fmt.Errorf("needs shared library %s, found in none of %s: %w", name, strings.Join(dirs, ", "), errors.ErrUnsupported)
}
