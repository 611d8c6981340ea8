package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/client"
)

// world is what every contender shares: the run's identity, its work
// directory, the Docker client and the images.
type world struct {
	id          string // random hex; every name this run makes contains "bench"+id
	n           int
	bin         string // bottle-reconcile binary, absolute
	work        string // work directory, removed by the cleanup
	docker      *client.Client
	bundleImage string
	log         io.Writer // progress lines
}

// tag is the string every resource of this run carries in its name.
func (w *world) tag() string { return "bench" + w.id }

// instance is bottle-reconcile's --instance for every reconcile phase.
func (w *world) instance() string { return w.tag() }

func (w *world) stateDir() string { return filepath.Join(w.work, "state") }

// workDir is where a run with this id keeps its files, so a cleanup run
// given only the id finds them.
func workDir(id string) string { return filepath.Join(os.TempDir(), "bottle-bench-"+id) }

// logf prints a progress line.
func (w *world) logf(format string, args ...any) {
	fmt.Fprintf(w.log, "bottle-bench: "+format+"\n", args...)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// timeIt runs f and returns how long it took.
func timeIt(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}
