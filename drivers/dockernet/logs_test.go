package dockernet

import (
	"testing"

	"github.com/docker/docker/api/types/container"
)

// What a guest makes the bundle log is stored on the host: it is rotated.
func TestBundleLogsAreBounded(t *testing.T) {
	lc := hostConfig("bottle-x").LogConfig
	want := container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
	if lc.Type != want.Type || lc.Config["max-size"] != want.Config["max-size"] || lc.Config["max-file"] != want.Config["max-file"] {
		t.Errorf("bundle log config %+v, want %+v", lc, want)
	}
}
