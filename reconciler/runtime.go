package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bottle-reconcile/bottle-reconcile/internal/atomicfile"
)

// Runtime is what a pass learned about one driver's runtime.
type Runtime struct {
	Kind    string `json:"kind"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

// runtimes asks every Versioned driver for its version.
func runtimes(ctx context.Context, ds []Driver) []Runtime {
	var out []Runtime
	for _, d := range ds {
		v, ok := d.(Versioned)
		if !ok {
			continue
		}
		rt := Runtime{Kind: d.Kind()}
		ver, err := v.Version(ctx)
		if err != nil {
			rt.Error = err.Error()
		} else {
			rt.Version = ver
		}
		out = append(out, rt)
	}
	return out
}

func (s StatusStore) runtimesPath() string { return filepath.Join(s.Dir, "runtimes.json") }

// WriteRuntimes records the runtimes a pass saw.
func (s StatusStore) WriteRuntimes(rts []Runtime) error {
	b, err := json.MarshalIndent(rts, "", "  ")
	if err != nil {
		return fmt.Errorf("status: encode runtimes: %w", err)
	}
	if err := atomicfile.Write(s.runtimesPath(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("status: record runtimes: %w", err)
	}
	return nil
}

// Runtimes reads what the last pass recorded; none when nothing was.
func (s StatusStore) Runtimes() ([]Runtime, error) {
	b, err := os.ReadFile(s.runtimesPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("status: read runtimes: %w", err)
	}
	var rts []Runtime
	if err := json.Unmarshal(b, &rts); err != nil {
		return nil, fmt.Errorf("status: decode runtimes: %w", err)
	}
	return rts, nil
}
