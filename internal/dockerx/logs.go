package dockerx

import "github.com/docker/docker/api/types/container"

// Log bounds of every container a bottle runs: what a guest makes the
// bundle log (its denied requests) and what it prints itself are stored by
// Docker on the host, so both are rotated at a fixed size.
const (
	LogMaxSize  = "10m"
	LogMaxFiles = "3"
)

// BoundedLogs is the log configuration of a bundle or docker guest: Docker's
// json-file driver (which the bundle's ready line is read from), rotated at
// LogMaxSize and keeping LogMaxFiles files, whatever the daemon's default
// driver is.
func BoundedLogs() container.LogConfig {
	return container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": LogMaxSize, "max-file": LogMaxFiles}}
}
