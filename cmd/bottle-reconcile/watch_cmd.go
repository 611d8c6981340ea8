package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// watchOptions are the flags of watch mode.
type watchOptions struct{}

func watchFlags(fs *flag.FlagSet) *watchOptions { return &watchOptions{} }

// watch runs the reconciler until ctx ends.
func watch(ctx context.Context, c *common, w *watchOptions, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bottle-reconcile: watch mode is not built yet; use --once")
	return exitUsage
}
