// Command bottle-bench compares, in one run on this machine, four ways of
// bringing N bottles up and down: raw Docker API calls (the floor), a docker
// CLI script, docker-compose, and bottle-reconcile. It prints times and
// ratios to the floor; it asserts nothing. scripts/bench builds what it
// needs and runs it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops the measuring; the cleanup then runs to
		// the end whatever else arrives, so nothing is left behind.
		s := <-sigs
		fmt.Fprintf(os.Stderr, "bottle-bench: %v: stopping and cleaning up\n", s)
		cancel()
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "bottle-bench: %v: still cleaning up, please wait\n", s)
		}
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// run parses the flags and runs the benchmark, or only a cleanup; it
// returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == floorObserveCmd {
		return floorObserve(ctx, args[1:], stderr)
	}
	if len(args) > 0 && args[0] == recreateCmd {
		return recreateMain(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "plot" {
		if len(args) < 3 {
			fmt.Fprintln(stderr, "usage: bottle-bench plot OUT.png REPORT.json...")
			return 2
		}
		if err := plot(ctx, args[1], args[2:]); err != nil {
			fmt.Fprintf(stderr, "bottle-bench: %v\n", err)
			return 1
		}
		return 0
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	w, err := newWorld(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-bench: %v\n", err)
		return 1
	}
	defer w.docker.Close()
	if o.cleanupOnly {
		return finish(w, 0)
	}
	code := 0
	if err := bench(ctx, w, o, stdout); err != nil {
		fmt.Fprintf(stderr, "bottle-bench: %v\n", err)
		code = 1
	}
	return finish(w, code)
}

// finish cleans up after the run and turns a failed cleanup into a
// failure.
func finish(w *world, code int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	removed, err := w.cleanup(ctx)
	for _, r := range removed {
		w.logf("cleanup removed %s", r)
	}
	if err != nil {
		w.logf("cleanup failed: %v", err)
		return 1
	}
	return code
}

// newRunID is a fresh random run id.
func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bench is the whole benchmark: warm-up, contenders, footprint, report.
func bench(ctx context.Context, w *world, o options, stdout io.Writer) error {
	started := time.Now()
	load := measureLoad(ctx, w)
	if err := os.MkdirAll(w.work, 0o755); err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	if err := checkAgentImage(ctx, w); err != nil {
		return err
	}
	proxy, err := startCountingProxy(w.work+"/docker.sock", dockerSocket())
	if err != nil {
		return err
	}
	defer proxy.close()

	w.logf("run %s: warm-up, 1 bottle up and down with bottle-reconcile", w.id)
	rep := &report{N: o.n, Runs: o.runs}
	if rep.WarmupUp, rep.WarmupDown, err = w.warmup(ctx, proxy); err != nil {
		return err
	}
	if w.bundleImage, err = findBundleImage(ctx, w); err != nil {
		return err
	}

	var cs []contender
	skipped := map[string]string{}
	var fl *floor
	var rc *reconcileContender
	for _, name := range o.contenders {
		switch name {
		case "floor":
			fl = newFloor(w)
			cs = append(cs, fl)
		case "cli":
			cs = append(cs, newCLI(w))
		case "compose":
			if why := composeMissing(); why != "" {
				skipped["compose"] = why
				continue
			}
			cs = append(cs, newCompose(w))
		case "bottle-reconcile":
			rc = newReconcile(w, proxy)
			cs = append(cs, rc)
		}
	}
	if rep.Contenders, err = w.measure(ctx, cs, skipped, o.contenders, o.runs); err != nil {
		return err
	}
	if fl != nil {
		rep.FloorOps = fl.ops.stats()
		rep.FloorObserveProcess = fl.procObserve
	}
	if rc != nil {
		rep.NoopCalls = rc.noopCalls
		rep.ReconcileOps = rc.ops.stats()
	}
	if o.idle > 0 || o.watch {
		if rep.Idle, rep.Watch, err = w.footprint(ctx, o.idle, o.watch); err != nil {
			return err
		}
	}
	rep.Machine = describeMachine(ctx, w, started, load)
	if o.jsonFile != "" {
		f, err := os.Create(o.jsonFile)
		if err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
		err = rep.writeJSON(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write JSON report %s: %w", o.jsonFile, err)
		}
	}
	if o.output == "json" {
		return rep.writeJSON(stdout)
	}
	rep.writeText(stdout)
	return nil
}
