package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that the loader never panics and that what it accepts is
// really valid: a name it reports is one it would accept, and an accepted
// bottle survives a second check unchanged. The seed corpus is in
// testdata/fuzz/FuzzParse; run with: go test ./spec -fuzz FuzzParse
func FuzzParse(f *testing.F) {
	examples, _ := filepath.Glob("../specs/*.yaml")
	for _, e := range examples {
		if b, err := os.ReadFile(e); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(valid))
	f.Add([]byte(withSpec(`allowCIDRs: ["::ffff:127.0.0.1", 0.0.0.0/0]`, `egress: {allow: ["*.", "[::1]:0"]}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, name, _, problems := Parse("fuzz.yaml", data, Options{})
		if b == nil && len(problems) == 0 {
			t.Fatal("rejected without a problem")
		}
		if b != nil && len(problems) > 0 {
			t.Fatalf("accepted with problems: %v", problems)
		}
		if name != "" && !validName(name) {
			t.Fatalf("reported invalid name %q", name)
		}
		for _, p := range problems {
			// Every problem points somewhere in the file (whole-file ones at 1:1).
			if p.File != "fuzz.yaml" || p.Line < 1 || p.Message == "" || strings.Contains(p.String(), "%!") {
				t.Fatalf("malformed problem %#v", p)
			}
		}
		if b != nil {
			for _, a := range b.Spec.Egress.Allow {
				r, err := ParseHostRule(a)
				if err != nil || r.String() != a {
					t.Fatalf("normalised rule %q does not round-trip: %v", a, err)
				}
			}
		}
	})
}
