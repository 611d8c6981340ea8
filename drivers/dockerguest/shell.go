package dockerguest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
)

// shellAPI is the part of the Docker client exec and cp use; kept apart
// from dockerAPI so the reconciler's fakes need not grow.
type shellAPI interface {
	ContainerExecCreate(ctx context.Context, id string, opts container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string, cfg container.ExecAttachOptions) (types.HijackedResponse, error)
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
	ContainerExecResize(ctx context.Context, execID string, opts container.ResizeOptions) error
	ContainerStatPath(ctx context.Context, id, p string) (container.PathStat, error)
	CopyToContainer(ctx context.Context, id, dst string, content io.Reader, opts container.CopyToContainerOptions) error
	CopyFromContainer(ctx context.Context, id, src string) (io.ReadCloser, container.PathStat, error)
}

func (d *Driver) shell(op string) (shellAPI, error) {
	if d.sh == nil {
		return nil, fmt.Errorf("dockerguest: %s: the Docker client cannot exec or copy: %w", op, cerrdefs.ErrNotImplemented)
	}
	return d.sh, nil
}

// Exec runs x in the guest container r and returns the command's exit
// code. Env values go to Docker only, never to a log.
func (d *Driver) Exec(ctx context.Context, r bottle.Resource, x guestio.Exec) (int, error) {
	op := "exec in container " + r.Name
	sh, err := d.shell(op)
	if err != nil {
		return -1, err
	}
	opts := container.ExecOptions{Cmd: x.Cmd, Env: x.Env, WorkingDir: x.Dir, Tty: x.TTY,
		AttachStdin: x.Stdin != nil, AttachStdout: true, AttachStderr: true}
	if x.TTY && x.Size.Width > 0 {
		opts.ConsoleSize = &[2]uint{x.Size.Height, x.Size.Width}
	}
	ex, err := sh.ContainerExecCreate(ctx, r.ID, opts)
	if err != nil {
		return -1, wrap(op, err)
	}
	att, err := sh.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{Tty: x.TTY, ConsoleSize: opts.ConsoleSize})
	if err != nil {
		return -1, wrap(op, err)
	}
	defer att.Close()

	if x.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, x.Stdin)
			_ = att.CloseWrite() // the command sees EOF
		}()
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if x.TTY {
			_, err = io.Copy(x.Stdout, att.Reader)
		} else {
			_, err = stdcopy.StdCopy(x.Stdout, x.Stderr, att.Reader)
		}
		done <- err
	}()
	if x.TTY && x.Size.Width > 0 {
		// Daemons before API 1.42 drop ConsoleSize; the daemon holds a
		// resize until the exec's process runs.
		_ = sh.ContainerExecResize(ctx, ex.ID, container.ResizeOptions{Height: x.Size.Height, Width: x.Size.Width})
	}
	if x.TTY && x.Resize != nil {
		go func() {
			for {
				select {
				case s, ok := <-x.Resize:
					if !ok {
						return
					}
					// A resize racing the command's exit is harmless to lose.
					_ = sh.ContainerExecResize(ctx, ex.ID, container.ResizeOptions{Height: s.Height, Width: s.Width})
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		return -1, wrap(op, ctx.Err())
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return -1, wrap(op+": read output", err)
	}
	ins, err := sh.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return -1, wrap(op, err)
	}
	return ins.ExitCode, nil
}

// CopyTo copies the local file or directory src into the guest container
// r at dst, as docker cp does (into dst when it is a directory, else as
// dst).
func (d *Driver) CopyTo(ctx context.Context, r bottle.Resource, src, dst string) error {
	op := fmt.Sprintf("copy %s to %s:%s", src, r.Name, dst)
	sh, err := d.shell(op)
	if err != nil {
		return err
	}
	st, err := sh.ContainerStatPath(ctx, r.ID, dst)
	if err != nil && !cerrdefs.IsNotFound(err) {
		return wrap(op, err)
	}
	dir, name := guestio.Place(dst, err == nil && st.Mode.IsDir(), filepath.Base(src))
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(guestio.Pack(pw, src, name)) }()
	err = sh.CopyToContainer(ctx, r.ID, dir, pr, container.CopyToContainerOptions{})
	pr.CloseWithError(err)
	if err != nil {
		return wrap(op, err)
	}
	return nil
}

// CopyFrom copies the file or directory src of the guest container r to
// the local dst, as docker cp does.
func (d *Driver) CopyFrom(ctx context.Context, r bottle.Resource, src, dst string) error {
	op := fmt.Sprintf("copy %s:%s to %s", r.Name, src, dst)
	sh, err := d.shell(op)
	if err != nil {
		return err
	}
	rc, _, err := sh.CopyFromContainer(ctx, r.ID, path.Clean(src))
	if err != nil {
		return wrap(op, err)
	}
	defer rc.Close()
	if err := guestio.UnpackTo(rc, dst); err != nil {
		return fmt.Errorf("dockerguest: %s: %w", op, err)
	}
	return nil
}
