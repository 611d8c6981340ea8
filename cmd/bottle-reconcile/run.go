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
       bottle-reconcile diff BASE HEAD           what a spec change does on a host converged on BASE (offline)
       bottle-reconcile status [-o json]         show each bottle's state
       bottle-reconcile down NAME... | --all     tear bottles down
       bottle-reconcile probe NAME [-o json]     run the escape probes in a live bottle
       bottle-reconcile exec NAME [-i] [-t] -- CMD...  run a command in a bottle's guest
       bottle-reconcile cp SRC NAME:DST | NAME:SRC DST  copy files into or out of a guest
       bottle-reconcile logs NAME [-f] [-o json] the bundle's egress and DNS decisions
       bottle-reconcile schema                   print the spec's JSON Schema
       bottle-reconcile completion bash|zsh      print a shell completion script
       bottle-reconcile --version                print the version and VCS revision

common flags: --state-dir DIR, --instance NAME, --subnet-pool CIDR, --allow-subnet-outside-pool, --smolvm PATH,
  --concurrency N, --max-deletes N, --log-format auto|text|json, -v N
  (bottle-reconcile COMMAND -h lists every flag of a command)
`

// command is one subcommand. The table is what run dispatches on and what
// shell completion lists, so the two cannot drift apart.
type command struct {
	name string
	// args says what the positional arguments are, for completion: dir (a
	// spec directory), paths (spec directories or files), bottles (names
	// of bottles in the spec directory), shells, or none.
	args   string
	hidden bool // internal: not listed in completion
	run    func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists every subcommand, in the order help shows them.
func commands() []command {
	ctxless := func(f func([]string, io.Writer, io.Writer) int) func(context.Context, []string, io.Writer, io.Writer) int {
		return func(_ context.Context, args []string, stdout, stderr io.Writer) int { return f(args, stdout, stderr) }
	}
	return []command{
		{name: "plan", args: "dir", run: cmdPlan},
		{name: "validate", args: "paths", run: ctxless(cmdValidate)},
		{name: "diff", args: "paths", run: ctxless(cmdDiff)},
		{name: "status", args: "dir", run: ctxless(cmdStatus)},
		{name: "down", args: "bottles", run: cmdDown},
		{name: "probe", args: "bottles", run: cmdProbe},
		{name: "exec", args: "bottles", run: cmdExec},
		{name: "cp", run: cmdCp},
		{name: "logs", args: "bottles", run: cmdLogs},
		{name: "schema", run: ctxless(cmdSchema)},
		{name: "completion", args: "shells", run: ctxless(cmdCompletion)},
		{name: "version", run: func(_ context.Context, _ []string, stdout, _ io.Writer) int { return cmdVersion(stdout) }},
		{name: "bundle", hidden: true, run: func(ctx context.Context, args []string, _, stderr io.Writer) int {
			log := logr.FromSlogHandler(slog.NewJSONHandler(stderr, nil))
			return bundle.Main(ctx, log, args, stderr)
		}},
		{name: "probe-run", hidden: true, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return probe.RunMain(ctx, args, os.Stdin, stdout, stderr) // the probe runner inside a guest
		}},
		{name: "__bottles", hidden: true, run: ctxless(cmdBottleNames)}, // completion's bottle names
	}
}

// run dispatches a command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "--version", "-version":
		return cmdVersion(stdout)
	}
	for _, c := range commands() {
		if c.name == cmd {
			return c.run(ctx, args[1:], stdout, stderr)
		}
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
		return plan(ctx, &c, first(pos), false, false, "text", stdout, stderr)
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
