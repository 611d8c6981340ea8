package bundle

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
)

// Main runs the bundle program: "run" (the default) starts the selected
// daemons and the control endpoint and blocks until ctx ends; "health" asks
// the control endpoint and exits 0 only when the bundle is healthy (for a
// person: docker exec BUNDLE /bottle-reconcile bundle health; nothing runs
// it on a schedule).
func Main(ctx context.Context, log logr.Logger, args []string, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "run":
		cfg, err := DecodeConfig(os.Getenv(ConfigEnv))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if err := Run(ctx, log, cfg); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "health":
		if err := Health(ctx, ControlAddr); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "bundle: unknown command %q (want run or health)\n", cmd)
		return 2
	}
}

// Health asks the control endpoint at addr whether the bundle is healthy.
func Health(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("bundle: health: %w", err)
	}
	req.Close = true // no idle connection (and its timers) between checks
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bundle: health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bundle: health: %s: %s", resp.Status, body)
	}
	return nil
}
