// Command bottle-reconcile keeps sandboxes for AI coding agents running,
// declaratively, from a directory of bottle.yaml specs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// exitInterrupted is the exit code after a second SIGTERM or SIGINT, as a
// shell reports a process killed by SIGINT.
const exitInterrupted = 130

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	// now is set before the second signal kills the children, whose end
	// can end run too: its exit code must not win over exitInterrupted.
	var now atomic.Bool
	go func() {
		// The first signal ends ctx: operations in flight finish, nothing new
		// starts. A second one means "now".
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "bottle-reconcile: %v: finishing operations in flight; send it again to exit at once\n", s)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "bottle-reconcile: %v again: exiting now\n", s)
			now.Store(true)
			killChildren()
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if now.Load() {
		code = exitInterrupted
	}
	close(done)
	cancel()
	os.Exit(code)
}
