package guestio

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "tree", "a.txt"), "alpha", 0o644)
	write(t, filepath.Join(src, "tree", "sub", "run.sh"), "#!/bin/sh\n", 0o755)
	if err := os.Symlink("a.txt", filepath.Join(src, "tree", "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, src, rename string
		want              map[string]string // path under dst → content ("->x" for a link)
	}{
		{"dir keeps its name", "tree", "", map[string]string{"tree/a.txt": "alpha", "tree/sub/run.sh": "#!/bin/sh\n", "tree/link": "->a.txt"}},
		{"dir renamed", "tree", "copy", map[string]string{"copy/a.txt": "alpha", "copy/sub/run.sh": "#!/bin/sh\n"}},
		{"file renamed", "tree/a.txt", "b.txt", map[string]string{"b.txt": "alpha"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Pack(&buf, filepath.Join(src, tc.src), filepath.Base(tc.src)); err != nil {
				t.Fatal(err)
			}
			dst := t.TempDir()
			if err := Unpack(&buf, dst, tc.rename); err != nil {
				t.Fatal(err)
			}
			for p, want := range tc.want {
				full := filepath.Join(dst, p)
				if link, ok := strings.CutPrefix(want, "->"); ok {
					if got, err := os.Readlink(full); err != nil || got != link {
						t.Errorf("%s: link %q, %v; want %q", p, got, err, link)
					}
					continue
				}
				got, err := os.ReadFile(full)
				if err != nil || string(got) != want {
					t.Errorf("%s: %q, %v; want %q", p, got, err, want)
				}
			}
			if st, err := os.Stat(filepath.Join(dst, tc.rename, "sub", "run.sh")); err == nil && st.Mode().Perm() != 0o755 {
				t.Errorf("run.sh mode %v, want 0755", st.Mode().Perm())
			}
		})
	}
}

// TestUnpackStaysInside feeds streams that try to write outside the
// target: by name, and through a symlink they planted first.
func TestUnpackStaysInside(t *testing.T) {
	outside := t.TempDir()
	for _, tc := range []struct {
		name    string
		entries []tar.Header
	}{
		{"dot-dot", []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}}},
		{"absolute", []tar.Header{{Name: "/evil", Typeflag: tar.TypeReg, Mode: 0o644}}},
		{"two tops", []tar.Header{{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644}, {Name: "b", Typeflag: tar.TypeReg, Mode: 0o644}}},
		{"through a symlink", []tar.Header{
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "d/out", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "d/out/evil", Typeflag: tar.TypeReg, Mode: 0o644},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tc.entries {
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			if err := Unpack(&buf, t.TempDir(), ""); err == nil {
				t.Error("unpacked, want an error")
			}
			if _, err := os.Stat(filepath.Join(outside, "evil")); err == nil {
				t.Error("a file was written outside the target")
			}
		})
	}
}
