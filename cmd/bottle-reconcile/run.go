package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/probe"
)

const usage = `usage: bottle-reconcile [flags] [DIR]          watch DIR (default ./specs) and keep its bottles running
       bottle-reconcile --once [--dry-run] [DIR] one pass, then exit
       bottle-reconcile plan [DIR]               print what a pass would do, changing nothing
       bottle-reconcile validate [DIR|FILE]...   check spec files (no Docker, no smolvm)
       bottle-reconcile status [-o json]         show each bottle's state
       bottle-reconcile down NAME... | --all     tear bottles down
       bottle-reconcile probe NAME [-o json]     run the escape probes in a live bottle
       bottle-reconcile exec NAME [-i] [-t] -- CMD...  run a command in a bottle's guest
       bottle-reconcile cp SRC NAME:DST | NAME:SRC DST  copy files into or out of a guest
       bottle-reconcile logs NAME [-f] [-o json] the bundle's egress and DNS decisions
       bottle-reconcile schema                   print the spec's JSON Schema
       bottle-reconcile --version                print the version and VCS revision

common flags: --state-dir DIR, --instance NAME, --subnet-pool CIDR, --smolvm PATH,
  --concurrency N, --max-deletes N, --log-format auto|text|json, -v N
  (bottle-reconcile COMMAND -h lists every flag of a command)
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
	case "plan":
		return cmdPlan(ctx, args[1:], stdout, stderr)
	case "exec":
		return cmdExec(ctx, args[1:], stdout, stderr)
	case "cp":
		return cmdCp(ctx, args[1:], stdout, stderr)
	case "logs":
		return cmdLogs(ctx, args[1:], stdout, stderr)
	case "probe":
		return cmdProbe(ctx, args[1:], stdout, stderr)
	case "probe-run": // hidden: the probe runner inside a guest
		return probe.RunMain(ctx, args[1:], os.Stdin, stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "down":
		return cmdDown(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "schema":
		return cmdSchema(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version", "-version":
		return cmdVersion(stdout)
	}
	if cmd != "" && !strings.HasPrefix(cmd, "-") && !isDir(cmd) {
		fmt.Fprintf(stderr, "bottle-reconcile: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
	return cmdReconcile(ctx, args, stdout, stderr)
}

// cmdReconcile is the default command: watch DIR, or one pass with --once.
func cmdReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("", stderr, "[--once [--dry-run]] [flags] [DIR]")
	c.register(fs)
	onceFlag := fs.Bool("once", false, "run one pass and exit: 0 when every bottle converged, 1 when any did not, 3 when another reconciler holds the lock")
	dryRun := fs.Bool("dry-run", false, "with --once: print the plan and change nothing (same as plan)")
	w := watchFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "bottle-reconcile: one spec directory, got %d arguments\n%s", len(pos), usage)
		return exitUsage
	}
	if *dryRun {
		if !*onceFlag {
			fmt.Fprintln(stderr, "bottle-reconcile: --dry-run goes with --once (or use: bottle-reconcile plan)")
			return exitUsage
		}
		return plan(ctx, &c, first(pos), false, "text", stdout, stderr)
	}
	if err := c.resolve(first(pos)); err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitUsage
	}
	if *onceFlag {
		return once(ctx, &c, stdout, stderr)
	}
	return watch(ctx, &c, w, stdout, stderr)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
