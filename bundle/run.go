package bundle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
)

// Run starts the control endpoint and the daemons cfg selects, and blocks
// until ctx ends or a daemon fails.
func Run(ctx context.Context, log logr.Logger, cfg Config) error {
	ln, err := net.Listen("tcp", ControlAddr)
	if err != nil {
		return fmt.Errorf("bundle: listen control %s: %w", ControlAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s daemons=%v\n", cfg.Bottle, cfg.Daemons)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("bundle running", "bottle", cfg.Bottle, "daemons", cfg.Daemons)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bundle: control server: %w", err)
	}
	return nil
}
