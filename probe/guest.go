package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// GuestDriver is what the probe needs of the bottle's guest driver: its
// normal observation, to find the guest, and a way in. The guest drivers
// (dockerguest, smolvm) satisfy it, so the runner runs as `exec` runs a
// command: through Docker's exec, or smolvm's with its minimal environment
// and its process group killed when ctx ends.
type GuestDriver interface {
	Observer
	Exec(ctx context.Context, r bottle.Resource, x guestio.Exec) (int, error)
	CopyTo(ctx context.Context, r bottle.Resource, src, dst string) error
}

// guest is where the runner runs: a way to put the binary in and run it.
type guest interface {
	// install copies the runner binary in and returns the argv that runs
	// it there.
	install(ctx context.Context, binary string) ([]string, error)
	// run runs argv inside and returns its stdout; an error carries stderr.
	run(ctx context.Context, argv []string) ([]byte, error)
	String() string
}

// driverGuest is the bottle's guest as its driver observed it.
type driverGuest struct {
	d    GuestDriver
	r    bottle.Resource
	kind string // spec.GuestDocker or spec.GuestSmolvm
}

func (g driverGuest) String() string {
	if g.kind == spec.GuestSmolvm {
		return "smolvm machine " + g.r.Name
	}
	return "container " + g.r.Name
}

// install copies the runner to /tmp, or to / where there is no /tmp (a
// FROM scratch image): the binary alone when it is static, else a
// directory with its loader and libraries (see install.go). The copy keeps
// the binary's mode, so it must be executable here.
func (g driverGuest) install(ctx context.Context, binary string) ([]string, error) {
	st, err := os.Stat(binary)
	if err != nil {
		return nil, fmt.Errorf("probe: runner binary: %w", err)
	}
	if st.Mode()&0o111 != 0o111 {
		return nil, fmt.Errorf("probe: runner binary %s has mode %#o, not executable by all: chmod a+x it", binary, st.Mode().Perm())
	}
	deps, err := runnerDeps(binary)
	if err != nil {
		return nil, fmt.Errorf("probe: runner binary %s: %w", binary, err)
	}
	name, src := installName(), binary
	if len(deps) > 0 {
		tmp, err := os.MkdirTemp("", "bottle-probe-stage-")
		if err != nil {
			return nil, fmt.Errorf("probe: stage runner %s: %w", binary, err)
		}
		defer os.RemoveAll(tmp)
		src = filepath.Join(tmp, name)
		if err := stage(src, binary, deps); err != nil {
			return nil, fmt.Errorf("probe: stage dynamically linked runner %s: %w", binary, err)
		}
	}
	var errs []error
	for _, dir := range []string{"/tmp", "/"} {
		dst := path.Join(dir, name)
		err := g.d.CopyTo(ctx, g.r, src, dst)
		if err == nil {
			return runnerCommand(dst, len(deps) > 0), nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("probe: copy runner into %s: %w", g, errors.Join(errs...))
}

func (g driverGuest) run(ctx context.Context, argv []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	code, err := g.d.Exec(ctx, g.r, guestio.Exec{Cmd: argv, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, fmt.Errorf("probe: run the runner in %s: %w", g, err)
	}
	if code != 0 {
		return nil, fmt.Errorf("probe: runner in %s exited %d: %s", g, code, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
