package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/docker/docker/client"
)

// options are the command line.
type options struct {
	n, runs     int
	contenders  []string // result names, in the order given
	idle        time.Duration
	watch       bool
	output      string
	jsonFile    string
	bin         string
	id          string
	cleanupOnly bool
}

// contenderNames maps -contenders words to result names.
var contenderNames = map[string]string{
	"floor": "floor", "cli": "cli", "compose": "compose", "reconcile": "bottle-reconcile",
}

var validID = regexp.MustCompile(`^[0-9a-f]{4,12}$`)

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bottle-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bottle-bench [flags]\n\nCompares bringing N bottles up and down with raw Docker API calls, the docker CLI,\ndocker-compose and bottle-reconcile, and prints the figures.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.n, "n", 20, "bottles per contender")
	fs.IntVar(&o.runs, "runs", 3, "runs of every contender; the table shows the median and the range")
	list := fs.String("contenders", "floor,cli,compose,reconcile", "contenders to run, in this order")
	fs.DurationVar(&o.idle, "idle", 0, "measure host CPU over this window with no bottles and with N bottles up (0: skip)")
	fs.BoolVar(&o.watch, "watch", false, "measure watch-mode reaction times, memory and idle CPU of bottle-reconcile")
	fs.StringVar(&o.output, "o", "text", "output: text or json")
	fs.StringVar(&o.jsonFile, "json", "", "also write the JSON report to this file (for bottle-bench plot)")
	fs.StringVar(&o.bin, "bin", "bin/bottle-reconcile", "the bottle-reconcile binary (static)")
	fs.StringVar(&o.id, "id", "", "run id: hex, names everything the run makes (default random)")
	fs.BoolVar(&o.cleanupOnly, "cleanup", false, "only remove what the run -id made, then exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fail := func(format string, a ...any) (options, error) {
		fmt.Fprintf(stderr, "bottle-bench: "+format+"\n", a...)
		return o, errors.New("usage")
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.cleanupOnly && o.id == "" {
		return fail("-cleanup needs the -id of the run to clean up")
	}
	if o.id == "" {
		o.id = newRunID()
	}
	if !validID.MatchString(o.id) {
		return fail("-id %q: use 4 to 12 lowercase hex digits", o.id)
	}
	if o.n < 1 || o.n > maxBottles {
		return fail("-n %d: use 1 to %d", o.n, maxBottles)
	}
	if o.runs < 1 {
		return fail("-runs %d: use 1 or more", o.runs)
	}
	if o.idle < 0 {
		return fail("-idle must not be negative")
	}
	if o.output != "text" && o.output != "json" {
		return fail("-o %q: use text or json", o.output)
	}
	seen := map[string]bool{}
	for _, c := range strings.Split(*list, ",") {
		name, ok := contenderNames[strings.TrimSpace(c)]
		if !ok {
			return fail("-contenders: %q is not one of floor, cli, compose, reconcile", c)
		}
		if seen[name] {
			return fail("-contenders: %q twice", c)
		}
		seen[name] = true
		o.contenders = append(o.contenders, name)
	}
	return o, nil
}

// newWorld connects to Docker and settles the paths of the run.
func newWorld(o options, log io.Writer) (*world, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, fmt.Errorf("-bin %s: %w", o.bin, err)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker daemon answers (scripts/docker-up starts one): %w", err)
	}
	return &world{id: o.id, n: o.n, bin: bin, work: workDir(o.id), docker: cli, log: log}, nil
}
