package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
)

// waitReady follows the bundle's stdout until its ready line
// (bundle.ReadyLine). Docker pushes each line as it is written, so the wait
// ends the moment the bundle is bound, with no polling; the stream ends
// when the container stops, and then the error gives its exit code and the
// last lines it wrote to stderr.
func (d *Driver) waitReady(ctx context.Context, op, id string) error {
	wctx, cancel := context.WithTimeout(ctx, d.opts.ReadyTimeout)
	defer cancel()
	rc, err := d.api.ContainerLogs(wctx, id, container.LogsOptions{ShowStdout: true, Follow: true})
	if err == nil {
		err = scanReady(rc)
		rc.Close()
		if err == nil {
			return nil
		}
	}
	switch {
	case ctx.Err() != nil:
		return wrap(op+": wait for the ready line", ctx.Err())
	case wctx.Err() != nil:
		return fmt.Errorf("dockernet: %s: not ready after %s (no %q line on its log stream)%s: %w",
			op, d.opts.ReadyTimeout, bundle.ReadyLine, d.lastWords(ctx, id), context.DeadlineExceeded)
	case errors.Is(err, errNoReadyLine):
		return d.stopped(ctx, op, id)
	}
	return wrap(op+": follow its log stream for the ready line", err)
}

var errNoReadyLine = errors.New("the log stream ended without the ready line")

// scanReady reads a multiplexed log stream until the ready line, and
// returns nil once it has seen it.
func scanReady(r io.Reader) error {
	w := &readyWriter{}
	_, err := stdcopy.StdCopy(w, io.Discard, r)
	switch {
	case w.ready:
		return nil
	case err == nil:
		return errNoReadyLine
	}
	return err
}

// errFound stops StdCopy once the line is found.
var errFound = errors.New("ready line found")

// readyWriter looks for the ready line in what it is given.
type readyWriter struct {
	buf   []byte
	ready bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if bundle.IsReady(line) {
			w.ready = true
			return len(p), errFound
		}
	}
	if len(w.buf) > 64<<10 { // a line that long is not the ready line
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// stopped explains a bundle whose log stream ended before it was ready:
// unavailable, not a precondition as a guest's early stop is, since the
// bundle is this binary, and its exit code and last words say why.
func (d *Driver) stopped(ctx context.Context, op, id string) error {
	c, err := d.api.ContainerInspect(ctx, id)
	if err != nil {
		return wrap(op+": the bundle's log stream ended before it was ready; inspect", err)
	}
	state := "state unknown"
	if c.State != nil {
		state = fmt.Sprintf("%s (%d)", c.State.Status, c.State.ExitCode)
	}
	return fmt.Errorf("dockernet: %s: the bundle stopped before it was ready: %s%s: %w",
		op, state, d.lastWords(ctx, id), cerrdefs.ErrUnavailable)
}

// lastWords is the end of what the bundle wrote to stderr, for errors.
func (d *Driver) lastWords(ctx context.Context, id string) string {
	rc, err := d.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStderr: true, Tail: "3"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var stderr bytes.Buffer
	_, _ = stdcopy.StdCopy(io.Discard, &stderr, io.LimitReader(rc, 8<<10))
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return fmt.Sprintf("; it said: %q", s)
	}
	return ""
}
