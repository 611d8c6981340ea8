package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
)

const usage = `usage: bottle-reconcile [flags] [DIR]          watch DIR (default ./specs) and keep its bottles running
       bottle-reconcile --once [--dry-run] [DIR] one pass, then exit
       bottle-reconcile plan [DIR]               print what a pass would do, changing nothing
       bottle-reconcile validate [DIR|FILE]...   check spec files (no Docker, no smolvm)
       bottle-reconcile status [-o json]         show each bottle's state
       bottle-reconcile down NAME... | --all     tear bottles down
       bottle-reconcile schema                   print the spec's JSON Schema
`

// run dispatches a command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "bundle":
		log := logr.FromSlogHandler(slog.NewJSONHandler(stderr, nil))
		return bundle.Main(ctx, log, args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "schema":
		return cmdSchema(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprint(stderr, usage)
	return exitUsage
}
