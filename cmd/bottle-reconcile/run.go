package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
)

// run dispatches a command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "bundle" {
		log := logr.FromSlogHandler(slog.NewJSONHandler(stderr, nil))
		return bundle.Main(ctx, log, args[1:], stderr)
	}
	fmt.Fprintln(stderr, "bottle-reconcile: not implemented yet")
	return 2
}
