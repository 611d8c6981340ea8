package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// A cached load says exactly what an uncached one says, after every kind
// of change to the directory, and the cache holds only the last load's
// files.
func TestCacheMatchesUncachedLoads(t *testing.T) {
	dir := t.TempDir()
	c := NewCache()
	for _, s := range directoryChanges(t, dir) {
		s.do()
		want, err := LoadDir(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := LoadDir(dir, Options{Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(summary(got), summary(want)) {
			t.Errorf("%s: cached load\n%v\nwant\n%v", s.name, summary(got), summary(want))
		}
		if len(c.m) != len(got.Files) {
			t.Errorf("%s: cache holds %d entries for %d files", s.name, len(c.m), len(got.Files))
		}
	}
}

// changeStep is one change to a spec directory.
type changeStep struct {
	name string
	do   func()
}

// directoryChanges is every kind of change a spec directory sees, in
// order, for loads that must see each one.
func directoryChanges(t *testing.T, dir string) []changeStep {
	// a.yaml's spec normalises: the loader rewrites what it holds.
	a := withSpec(`egress: {allow: ["API.Anthropic.com.", "*.github.com:443"]}`, `allowCIDRs: [198.51.100.7]`)
	return []changeStep{
		{"first load", func() {
			write(t, dir, "a.yaml", a)
			write(t, dir, "b.yaml", named("b"))
			write(t, dir, "bad.yaml", "apiVersion: nope\n")
		}},
		{"nothing changed", func() {}},
		{"an edit", func() { write(t, dir, "b.yaml", strings.Replace(named("b"), "image:", "env: {X: \"1\"}\n  image:", 1)) }},
		{"an edit that breaks a file", func() { write(t, dir, "b.yaml", named("b")+"  nonsense: 1\n") }},
		{"a second claim on a name", func() { write(t, dir, "a2.yaml", a) }},
		{"a removal", func() {
			if err := os.Remove(filepath.Join(dir, "a2.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"the same bytes under another name", func() {
			if err := os.Rename(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "c.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

// summary is what a load says, without pointers.
func summary(r *Result) []string {
	var out []string
	for _, b := range r.Bottles {
		out = append(out, "bottle "+b.Metadata.Name+" from "+filepath.Base(b.Source)+" env "+strings.Join(sortedKeys(b.Spec.Env), ","))
	}
	for _, p := range r.Problems {
		out = append(out, "problem "+filepath.Base(p.File)+" "+p.Field+" "+p.Message)
	}
	for n, why := range r.Held {
		out = append(out, "held "+n+": "+strings.ReplaceAll(why, filepath.Dir(r.Files[0]), "DIR"))
	}
	out = append(out, "unattributed "+strings.Join(r.Unattributed, ","))
	slices.Sort(out)
	return out
}

// A file that cannot be read is reported on every load, never cached as
// fine; and an edit that keeps the size is still seen.
func TestCacheSeesEveryChange(t *testing.T) {
	dir := t.TempDir()
	c := NewCache()
	f := write(t, dir, "a.yaml", named("a"))
	r, _ := LoadDir(dir, Options{Cache: c})
	if len(r.Bottles) != 1 || r.Bottles[0].Metadata.Name != "a" {
		t.Fatalf("first load: %v", summary(r))
	}
	// Same size, same modification time, other bytes.
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "a.yaml", named("b"))
	if err := os.Chtimes(f, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	r, _ = LoadDir(dir, Options{Cache: c})
	if len(r.Bottles) != 1 || r.Bottles[0].Metadata.Name != "b" {
		t.Fatalf("after a same-size edit with the old mtime: %v", summary(r))
	}
	// A link to nowhere cannot be read, as root too.
	if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "z.yaml")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r, _ = LoadDir(dir, Options{Cache: c})
		if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Message, "cannot read the file") {
			t.Fatalf("unreadable file: %v", summary(r))
		}
	}
}
