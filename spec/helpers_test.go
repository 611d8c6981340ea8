package spec

import (
	"net/netip"
	"strings"
	"testing"
)

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantRefused parses doc as f.yaml and wants it refused with a problem
// whose rendering contains want.
func wantRefused(t *testing.T, doc, want string) {
	t.Helper()
	b, _, _, problems := Parse("f.yaml", []byte(doc), Options{})
	if b != nil {
		t.Fatalf("accepted:\n%s", doc)
	}
	var all []string
	for _, p := range problems {
		all = append(all, p.String())
	}
	if text := strings.Join(all, "\n"); !strings.Contains(text, want) {
		t.Fatalf("problems do not mention %q:\n%s", want, text)
	}
}
