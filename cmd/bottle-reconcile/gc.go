package main

import (
	"os"
	"runtime/debug"
)

// oneShotGCPercent is the garbage collector's target for a command that
// runs once and exits (a pass, plan, down, validate). Such a process
// allocates a few tens of MB, mostly the decoded container list and specs,
// and frees it all at exit; Go's default target collects that heap several
// times over, on the same two cores the Docker daemon needs to answer the
// process. Long-running commands (watch, the bundle) keep the default, so
// their memory at rest stays what it was.
const oneShotGCPercent = 400

// oneShotGC sets oneShotGCPercent unless GOGC says otherwise.
func oneShotGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(oneShotGCPercent)
	}
}
