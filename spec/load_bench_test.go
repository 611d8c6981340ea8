package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoadDir measures loading and checking a directory of n specs,
// what every pass and every validate does first.
//
//	go test ./spec -run XXX -bench LoadDir -benchmem
func BenchmarkLoadDir(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		dir := b.TempDir()
		for i := range n {
			body := withSpec(`egress: {allow: [api.anthropic.com, "*.github.com"]}`, `allowCIDRs: [198.51.100.0/24]`)
			body = named(fmt.Sprintf("b%04d", i)) + body[len(valid):]
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("b%04d.yaml", i)), []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				r, err := LoadDir(dir, Options{})
				if err != nil || len(r.Bottles) != n {
					b.Fatalf("loaded %v, %v", r, err)
				}
			}
		})
		// What a new process with verdicts from the last one does.
		store := filepath.Join(b.TempDir(), "verdicts.json")
		v := OpenVerdicts(store)
		LoadDir(dir, Options{Verdicts: v})
		if err := v.Save(); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n, "-verdicts"), func(b *testing.B) {
			for b.Loop() {
				r, err := LoadDir(dir, Options{Verdicts: OpenVerdicts(store)})
				if err != nil || len(r.Bottles) != n {
					b.Fatalf("loaded %v, %v", r, err)
				}
			}
		})
	}
}
