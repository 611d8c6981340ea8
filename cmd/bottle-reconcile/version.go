package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version describes this build from what the Go toolchain recorded in it:
// the module version (a tag, or "(devel)" for a local build), the VCS
// revision and whether the tree was modified, and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "bottle-reconcile (no build information)"
	}
	v := "bottle-reconcile " + bi.Main.Version
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	// Go 1.24+ stamps a pseudo-version that already names the revision.
	if rev != "" && !strings.Contains(bi.Main.Version, rev) {
		v += " " + rev
		if dirty {
			v += "+modified"
		}
	}
	return v + " " + bi.GoVersion
}

func cmdVersion(stdout io.Writer) int {
	fmt.Fprintln(stdout, version())
	return exitOK
}
