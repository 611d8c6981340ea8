package bundle

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// ReadyLine starts the one line a bundle writes to stdout, once every
// socket it serves on is bound. The bundle driver waits for it on the
// container's log stream: readiness is signalled once, and waiting for it
// costs nothing while the bundle runs (no health check, no polling).
const ReadyLine = "bottle-bundle ready"

// writeReady writes ReadyLine with the bound addresses as JSON.
func writeReady(w io.Writer, addrs map[string]string) {
	b, _ := json.Marshal(addrs) // a map of strings always encodes
	fmt.Fprintf(w, "%s %s\n", ReadyLine, b)
}

// IsReady reports whether line is the ready line.
func IsReady(line string) bool {
	return strings.HasPrefix(strings.TrimRight(line, "\r\n"), ReadyLine)
}
