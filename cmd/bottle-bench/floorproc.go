package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/docker/docker/client"
)

// The floor's observe again, as a process of its own: start, connect, the
// two lists, exit. A no-op `bottle-reconcile --once` is a whole process, so
// this is the like-for-like floor for it; the in-process observe (a warm
// connection in a running program) is the floor of a watcher's pass.

// floorObserveCmd is the hidden subcommand that does it.
const floorObserveCmd = "floor-observe"

// afterObserve times the floor's observe as a process, as many times as
// the in-process one, then the floor of a heal (recreate.go).
func (f *floor) afterObserve(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("floor: own executable: %w", err)
	}
	for range observeSamples {
		d, err := timeIt(func() error {
			out, err := exec.CommandContext(ctx, exe, floorObserveCmd, f.w.id,
				strconv.Itoa(len(f.bottles)+1), strconv.Itoa(2*len(f.bottles))).CombinedOutput()
			if err != nil {
				return fmt.Errorf("floor: observe as a process: %w: %s", err, out)
			}
			return nil
		})
		if err != nil {
			return err
		}
		f.procObserve = append(f.procObserve, d)
	}
	// The floor of a heal, once the observes are timed: its first bundle
	// removed and made again, back to back.
	if len(f.bottles) > 0 {
		if err := recreate(ctx, f.w.docker, f.bottles[0].BundleName(), f.ops, healOpPrefix); err != nil {
			return fmt.Errorf("floor: %w", err)
		}
	}
	return nil
}

// floorObserve is the subcommand: floor-observe RUN NETWORKS CONTAINERS.
// It fails unless it sees exactly that many of the run's floor resources.
func floorObserve(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) != 3 {
		fmt.Fprintf(stderr, "usage: bottle-bench %s RUN NETWORKS CONTAINERS\n", floorObserveCmd)
		return 2
	}
	wantN, err1 := strconv.Atoi(args[1])
	wantC, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		fmt.Fprintf(stderr, "bottle-bench %s: NETWORKS and CONTAINERS are counts\n", floorObserveCmd)
		return 2
	}
	return withDocker(stderr, func(cli *client.Client) error {
		return observeFloor(ctx, cli, args[0], wantN, wantC)
	})
}

// withDocker runs f with a Docker client and returns a subcommand's exit
// code: 1, with the error on stderr, if either failed.
func withDocker(stderr io.Writer, f func(*client.Client) error) int {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		err = fmt.Errorf("docker client: %w", err)
	} else {
		err = f(cli)
		cli.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "bottle-bench: %v\n", err)
		return 1
	}
	return 0
}
