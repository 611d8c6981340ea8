package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

// watchOptions are the flags of watch mode.
type watchOptions struct {
	debounce        time.Duration
	resync          time.Duration
	shutdownTimeout time.Duration
	metricsAddr     string
}

func watchFlags(fs *flag.FlagSet) *watchOptions {
	w := &watchOptions{}
	fs.DurationVar(&w.debounce, "debounce", reconciler.DefaultDebounce, "watch: quiet period after a file or Docker event before a pass (and before a removed spec's bottle is torn down)")
	fs.DurationVar(&w.resync, "resync", reconciler.DefaultResync, "watch: full pass at least this often (±10%), events or not")
	fs.DurationVar(&w.shutdownTimeout, "shutdown-timeout", reconciler.DefaultShutdownTimeout, "watch: on SIGTERM or SIGINT, how long operations in flight may take to finish")
	fs.StringVar(&w.metricsAddr, "metrics-addr", "", "watch: serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464); empty: off")
	return w
}

// watch runs the reconciler until ctx ends: SIGTERM or SIGINT (main), after
// which operations in flight finish and it exits 0. SIGHUP runs a pass now.
func watch(ctx context.Context, c *common, w *watchOptions, stdout, stderr io.Writer) int {
	if w.debounce <= 0 || w.resync <= 0 || w.shutdownTimeout <= 0 {
		fmt.Fprintln(stderr, "bottle-reconcile: --debounce, --resync and --shutdown-timeout must be positive")
		return exitUsage
	}
	// The lock is held for the whole run: a --once or a second watcher of
	// this instance waits (--lock-timeout) or exits 3.
	e, release, code := c.openLocked(ctx, stderr)
	if e == nil {
		return code
	}
	defer release()

	opts := reconciler.WatchOptions{
		Debounce: w.debounce, Resync: w.resync, ShutdownTimeout: w.shutdownTimeout,
		Events: dockernet.NewEvents(e.docker, e.log),
	}
	if w.metricsAddr != "" {
		opts.Metrics = reconciler.NewMetrics()
	}
	wt := e.rec.Watcher(opts)

	if opts.Metrics != nil {
		ln, err := net.Listen("tcp", w.metricsAddr)
		if err != nil {
			fmt.Fprintf(stderr, "bottle-reconcile: --metrics-addr: %v\n", err)
			return exitFail
		}
		srv := &http.Server{Handler: opts.Metrics.Handler(wt.Ready), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error(err, "metrics server stopped")
			}
		}()
		defer srv.Close()
		e.log.Info("serving metrics", "addr", ln.Addr().String())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				wt.Trigger(reconciler.ReasonSignal)
			}
		}
	}()

	if err := wt.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitFail
	}
	return exitOK
}
