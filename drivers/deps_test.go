// Package drivers holds one driver per subpackage; this test keeps them
// apart from the controller.
package drivers

import (
	"os/exec"
	"strings"
	"testing"
)

// Drivers import the shared vocabulary (package bottle), never the
// reconciler: the controller's watcher, queue and metrics server stay out
// of every driver's build.
func TestDriversDoNotDependOnTheController(t *testing.T) {
	forbidden := []string{
		"github.com/bottle-reconcile/bottle-reconcile/reconciler",
		"github.com/fsnotify/fsnotify",
		"github.com/prometheus/client_golang",
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list ./drivers/...: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 { // drivers itself; dockernet, dockernet/sidecar, dockerguest, smolvm
		t.Fatalf("go list found %d driver packages, want at least 5:\n%s", len(lines), out)
	}
	for _, line := range lines {
		pkg, deps, _ := strings.Cut(line, " ")
		for _, dep := range strings.Fields(deps) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s; drivers import package bottle, not the controller", pkg, dep)
				}
			}
		}
	}
}
