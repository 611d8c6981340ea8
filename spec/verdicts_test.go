package spec

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Each step runs as a new process would: verdicts opened from disk, one
// load, saved. What the load says must be exactly what a load without
// verdicts says, bottles included (normalised fields too).
func TestVerdictsMatchFullChecks(t *testing.T) {
	dir, store := t.TempDir(), filepath.Join(t.TempDir(), "verdicts.json")
	for _, s := range directoryChanges(t, dir) {
		s.do()
		want, err := LoadDir(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		v := OpenVerdicts(store)
		got, err := LoadDir(dir, Options{Verdicts: v})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Save(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(summary(got), summary(want)) {
			t.Errorf("%s: load with verdicts\n%v\nwant\n%v", s.name, summary(got), summary(want))
		}
		if !reflect.DeepEqual(specsOf(got), specsOf(want)) {
			t.Errorf("%s: bottles with verdicts\n%+v\nwant\n%+v", s.name, specsOf(got), specsOf(want))
		}
		current := map[string]bool{}
		for _, f := range got.Files {
			b, _ := os.ReadFile(f)
			current[verdictKey(b, DefaultPool.String())] = true
		}
		for k := range v.known {
			if !current[k] {
				t.Errorf("%s: a verdict outlived its file's content: %s", s.name, v.known[k])
			}
		}
	}
}

func specsOf(r *Result) map[string]Spec {
	out := map[string]Spec{}
	for _, b := range r.Bottles {
		out[b.Metadata.Name+" "+filepath.Base(b.Source)] = b.Spec
	}
	return out
}

// A second process uses the verdict (no node tree is built), and the store
// holds names and hashes, never a spec's content.
func TestVerdictsSpareTheCheckAndHoldNoSecrets(t *testing.T) {
	dir, store := t.TempDir(), filepath.Join(t.TempDir(), "verdicts.json")
	write(t, dir, "a.yaml", withSpec(`env: {API_KEY: "sk-very-secret-value"}`))
	for i, wantDoc := range []bool{true, false} {
		v := OpenVerdicts(store)
		r, err := LoadDir(dir, Options{Verdicts: v})
		if err != nil || len(r.Bottles) != 1 {
			t.Fatalf("load %d: %v %v", i, summary(r), err)
		}
		if got := r.Bottles[0].doc != nil; got != wantDoc {
			t.Errorf("load %d: parsed in full = %v, want %v", i, got, wantDoc)
		}
		if r.Bottles[0].Spec.Env["API_KEY"] != "sk-very-secret-value" {
			t.Errorf("load %d: env not decoded: %v", i, r.Bottles[0].Spec.Env)
		}
		if err := v.Save(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "sk-very-secret-value") || strings.Contains(string(b), "API_KEY") {
		t.Errorf("verdicts hold spec content: %s", b)
	}
	if fi, _ := os.Stat(store); fi.Mode().Perm() != 0o600 {
		t.Errorf("verdicts file mode %v, want 0600", fi.Mode().Perm())
	}
}

// A verdict is worth nothing to another build, to another pool, or when
// the store is damaged: the file is checked in full.
func TestVerdictsAreNotTrustedBeyondWhatTheyCover(t *testing.T) {
	dir, store := t.TempDir(), filepath.Join(t.TempDir(), "verdicts.json")
	write(t, dir, "a.yaml", withSpec(`allowCIDRs: [10.50.0.0/24]`))
	v := OpenVerdicts(store)
	if r, _ := LoadDir(dir, Options{Verdicts: v}); len(r.Bottles) != 1 {
		t.Fatalf("first load: %v", summary(r))
	}
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}

	// Another pool: the same bytes reach into it now.
	r, _ := LoadDir(dir, Options{Verdicts: OpenVerdicts(store), Pool: netip.MustParsePrefix("10.50.0.0/16")})
	if len(r.Bottles) != 0 || len(r.Problems) != 1 || r.Problems[0].Line == 0 {
		t.Errorf("other pool: %v (problem must have a position)", summary(r))
	}

	// Another build.
	var f verdictsFile
	b, _ := os.ReadFile(store)
	if err := json.Unmarshal(b, &f); err != nil || len(f.Valid) != 1 {
		t.Fatalf("store: %s %v", b, err)
	}
	f.Build = "another build"
	b, _ = json.Marshal(f)
	if err := os.WriteFile(store, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if v := OpenVerdicts(store); len(v.known) != 0 {
		t.Errorf("verdicts of another build were taken: %v", v.known)
	}

	// Damaged.
	if err := os.WriteFile(store, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	v = OpenVerdicts(store)
	if r, _ := LoadDir(dir, Options{Verdicts: v}); len(r.Bottles) != 1 || r.Bottles[0].doc == nil {
		t.Errorf("damaged store: %v", summary(r))
	}
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	if v := OpenVerdicts(store); len(v.known) != 1 {
		t.Errorf("damaged store was not rewritten: %v", v.known)
	}
}

// Two files claiming one name are reported at the name's line, also when
// their verdicts spared the parse.
func TestVerdictsKeepPositionsOfClaims(t *testing.T) {
	dir, store := t.TempDir(), filepath.Join(t.TempDir(), "verdicts.json")
	write(t, dir, "a.yaml", named("x"))
	write(t, dir, "b.yaml", "# the same bottle\n"+named("y"))
	v := OpenVerdicts(store)
	LoadDir(dir, Options{Verdicts: v})
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "b.yaml", "# the same bottle\n"+named("x"))
	write(t, dir, "c.yaml", "# the same bottle\n"+named("x"))
	r, _ := LoadDir(dir, Options{Verdicts: OpenVerdicts(store)})
	if len(r.Problems) != 3 {
		t.Fatalf("problems: %v", summary(r))
	}
	for _, p := range r.Problems {
		want := 5 // under the comment
		if filepath.Base(p.File) == "a.yaml" {
			want = 4
		}
		if p.Line != want || p.Column != 9 {
			t.Errorf("%s: at %d:%d, want %d:9", p.File, p.Line, p.Column, want)
		}
	}
}
