package dockerx

import (
	"regexp"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/docker/docker/api/types/container"
)

// HealthFromStatus reads a container's health from ContainerList's Status
// text (bundles have no health check now, but those an older version made
// still do, and their health still counts): on API 1.41 the list has no health field, and inspecting each
// container would cost a call per bottle. Docker writes, for a running
// container with a health check,
//
//	"Up 3 seconds (health: starting)"
//	"Up 3 seconds (healthy)"
//	"Up 2 minutes (unhealthy)"
//
// and no parenthesised suffix for one without ("Up 3 seconds") or for one
// that is not running ("Exited (137) 5 seconds ago", "Created").
func HealthFromStatus(status string) bottle.Health {
	if !strings.HasPrefix(status, "Up ") {
		return bottle.HealthNone
	}
	switch {
	case strings.HasSuffix(status, "(health: starting)"):
		return bottle.HealthStarting
	case strings.HasSuffix(status, "(healthy)"):
		return bottle.HealthHealthy
	case strings.HasSuffix(status, "(unhealthy)"):
		return bottle.HealthUnhealthy
	}
	return bottle.HealthNone
}

// exitedRE matches the exit code in "Exited (137) 5 seconds ago".
var exitedRE = regexp.MustCompile(`^Exited \((-?\d+)\)`)

// StateOf normalises a listed container's state and gives the detail a
// human wants next to it, e.g. "exited (137)".
func StateOf(c container.Summary) (bottle.State, string) {
	switch c.State {
	case container.StateRunning:
		return bottle.StateRunning, ""
	case container.StateCreated:
		return bottle.StateCreated, "created"
	case container.StateExited, container.StateDead:
		if m := exitedRE.FindStringSubmatch(c.Status); m != nil {
			return bottle.StateStopped, "exited (" + m[1] + ")"
		}
		return bottle.StateStopped, string(c.State)
	case container.StatePaused, container.StateRestarting, container.StateRemoving:
		return bottle.StateStopped, string(c.State)
	}
	return bottle.StateUnknown, string(c.State)
}
