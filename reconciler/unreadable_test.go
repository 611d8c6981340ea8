package reconciler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A state file that does not decode is a lost record, not a reason to stop:
// the pass goes on as if the bottle had none, then rewrites it (or removes
// it, when no bottle of that name is left).
func TestUnreadableStateFilesAreRebuilt(t *testing.T) {
	for _, garbage := range []string{"", "{", "\x00\x00\x00\x00", `{"bottle": 7}`, `{"bottle": "someone-else"}`} {
		t.Run(garbage, func(t *testing.T) {
			g := newRig(t, "i1")
			g.write("a.yaml", specFor("a"))
			g.write("b.yaml", specFor("b"))
			g.pass()
			g.writes()
			if err := os.Remove(filepath.Join(g.dir, "b.yaml")); err != nil {
				t.Fatal(err)
			}
			g.pass() // b torn down; its record goes
			g.writes()
			for _, f := range []string{"status/a.json", "status/gone.json", "pass.json"} {
				if err := os.WriteFile(filepath.Join(g.state, f), []byte(garbage), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p := g.pass()
			if !p.Converged() || len(g.writes()) != 0 {
				t.Fatalf("a pass over unreadable state files: converged %v, writes %v, failures %v", p.Converged(), g.writes(), p.Failures())
			}
			var files []string
			for _, u := range p.Unreadable {
				files = append(files, u.File)
			}
			slices.Sort(files)
			want := []string{"status/a.json", "status/gone.json"}
			if json.Unmarshal([]byte(garbage), &passRecord{}) != nil {
				want = append([]string{"pass.json"}, want...)
			}
			if !slices.Equal(files, want) {
				t.Errorf("unreadable files = %v, want %v", files, want)
			}
			sts, bad, err := g.r.Status().Read()
			if err != nil || len(bad) != 0 || len(sts) != 1 || sts[0].Bottle != "a" || sts[0].State != StatusReady {
				t.Fatalf("after the pass: statuses %+v, unreadable %v, err %v; want a rewritten, the rest gone", sts, bad, err)
			}
			if _, err := os.Stat(filepath.Join(g.state, "status", "gone.json")); !os.IsNotExist(err) {
				t.Errorf("the unreadable record of a bottle that no longer exists was kept (%v)", err)
			}
		})
	}
}
