package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

// Watch-phase timings: how often status is polled, how long a change may
// take, and how long the reconciler is watched doing nothing.
const (
	pollEvery     = 100 * time.Millisecond
	changeTimeout = 2 * time.Minute
	watchIdle     = 10 * time.Second
)

// watchResult is how fast a watching bottle-reconcile reacts, and what it
// costs while it waits.
type watchResult struct {
	NewSpec    time.Duration // spec written -> bottle Ready
	BundleHeal time.Duration // bundle removed -> new bundle running, bottle Ready
	EnvEdit    time.Duration // env edited -> new guest, bottle Ready
	MaxRSSKiB  int64
	IdleCPU    time.Duration // CPU time (self and children) over IdleWindow
	IdleWindow time.Duration
	ExitCode   int
}

// pidFile is where the watch child's pid is kept for a cleanup run.
func (w *world) pidFile() string { return filepath.Join(w.work, "watch.pid") }

// watch starts `bottle-reconcile DIR` with bs converged, times three
// changes, measures it idle, and stops it with SIGTERM.
func (w *world) watch(ctx context.Context, r rc, bs []benchBottle) (*watchResult, error) {
	logPath := filepath.Join(w.work, "watch.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("watch: create log %s: %w", logPath, err)
	}
	defer logf.Close()
	cmd := exec.Command(w.bin, append([]string{r.dir}, r.common()...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own group: a Ctrl-C reaches the benchmark, which stops it; and
	// SIGTERM if the benchmark dies without doing so.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("watch: start %s: %w", w.bin, err)
	}
	pid := cmd.Process.Pid
	_ = os.WriteFile(w.pidFile(), []byte(strconv.Itoa(pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_, _ = stopChild(cmd, exited)
		}
		_ = os.Remove(w.pidFile())
	}()
	fail := func(err error) (*watchResult, error) {
		return nil, fmt.Errorf("%w (watch log %s)%s", err, logPath, tail(readFile(logPath), 10))
	}

	res := &watchResult{}
	// Its first pass first: a change made during it would be timed with it.
	w.logf("watch: waiting for the first pass over %d bottles", len(bs))
	if err := w.poll(ctx, exited, func() (bool, error) {
		return allReadySince(ctx, r, bs, started)
	}); err != nil {
		return fail(fmt.Errorf("watch: first pass: %w", err))
	}

	// (a) A new spec file.
	extra := w.tag() + "-i-new"
	t0 := time.Now()
	if err := r.writeSpec(extra, guestEnvVal); err != nil {
		return fail(err)
	}
	if err := w.poll(ctx, exited, func() (bool, error) {
		return readySince(ctx, r, extra, t0)
	}); err != nil {
		return fail(fmt.Errorf("watch: new spec %s: %w", extra, err))
	}
	res.NewSpec = time.Since(t0)
	w.logf("watch: new spec -> Ready in %s", fmtDur(res.NewSpec))

	// (b) The bundle removed behind its back.
	b := bs[0]
	old, err := w.containerID(ctx, b.BundleName())
	if err != nil {
		return fail(err)
	}
	t0 = time.Now()
	if err := w.docker.ContainerRemove(ctx, b.BundleName(), container.RemoveOptions{Force: true}); err != nil {
		return fail(fmt.Errorf("watch: remove bundle %q: %w", b.BundleName(), err))
	}
	if err := w.poll(ctx, exited, func() (bool, error) {
		return w.replacedAndReady(ctx, r, b, b.BundleName(), old, t0)
	}); err != nil {
		return fail(fmt.Errorf("watch: heal bundle %q: %w", b.BundleName(), err))
	}
	res.BundleHeal = time.Since(t0)
	w.logf("watch: bundle removed -> healed and Ready in %s", fmtDur(res.BundleHeal))

	// (c) An env edit: the guest is replaced.
	if len(bs) > 1 {
		b = bs[1]
	}
	old, err = w.containerID(ctx, b.GuestName())
	if err != nil {
		return fail(err)
	}
	t0 = time.Now()
	if err := r.writeSpec(b.Name, guestEnvVal+"-edited"); err != nil {
		return fail(err)
	}
	if err := w.poll(ctx, exited, func() (bool, error) {
		return w.replacedAndReady(ctx, r, b, b.GuestName(), old, t0)
	}); err != nil {
		return fail(fmt.Errorf("watch: env edit of %s: %w", b.Name, err))
	}
	res.EnvEdit = time.Since(t0)
	w.logf("watch: env edit -> new guest and Ready in %s", fmtDur(res.EnvEdit))

	// Idle: its own CPU time over a quiet window.
	w.logf("watch: measuring the idle reconciler for %s", watchIdle)
	cpu0, err := procCPU(pid)
	if err != nil {
		return fail(err)
	}
	t0 = time.Now()
	if err := sleep(ctx, watchIdle); err != nil {
		return fail(err)
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return fail(err)
	}
	res.IdleCPU, res.IdleWindow = cpu1-cpu0, time.Since(t0)
	if res.MaxRSSKiB, err = procHWM(pid); err != nil {
		return fail(err)
	}

	stopped = true
	code, err := stopChild(cmd, exited)
	res.ExitCode = code
	if err != nil {
		return fail(err)
	}
	// The extra bottle stays listed, so the phase's down removes it too.
	return res, nil
}

// stopChild sends SIGTERM, waits for the exit (SIGKILL after the
// reconciler's own shutdown timeout and then some) and returns the code.
func stopChild(cmd *exec.Cmd, exited <-chan error) (int, error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-exited:
	case <-time.After(45 * time.Second):
		_ = cmd.Process.Kill()
		err = <-exited
		return -1, fmt.Errorf("watch: bottle-reconcile did not exit within 45 s of SIGTERM; killed")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), fmt.Errorf("watch: bottle-reconcile exited with %w after SIGTERM", err)
	}
	return 0, err
}

// poll calls cond every pollEvery until it holds, it fails, changeTimeout
// passes, or the watch child exits.
func (w *world) poll(ctx context.Context, exited <-chan error, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done after %s: %w", changeTimeout, ctx.Err())
		case err := <-exited:
			return fmt.Errorf("bottle-reconcile exited: %w", err)
		case <-tick.C:
		}
	}
}

// readySince reports whether bottle is Ready as of a pass that ended after t.
func readySince(ctx context.Context, r rc, bottle string, t time.Time) (bool, error) {
	sts, err := r.status(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range sts {
		if s.Bottle == bottle {
			return readyAfter(s, t), nil
		}
	}
	return false, nil
}

func readyAfter(s reconciler.Status, t time.Time) bool {
	return s.State == reconciler.StatusReady && s.LastReconciled.After(t)
}

// allReadySince reports whether every bottle of bs is Ready as of a pass
// that ended after t.
func allReadySince(ctx context.Context, r rc, bs []benchBottle, t time.Time) (bool, error) {
	sts, err := r.status(ctx)
	if err != nil {
		return false, err
	}
	ready := map[string]bool{}
	for _, s := range sts {
		ready[s.Bottle] = readyAfter(s, t)
	}
	for _, b := range bs {
		if !ready[b.Name] {
			return false, nil
		}
	}
	return true, nil
}

// replacedAndReady reports whether container name runs with an ID other
// than old and b is Ready as of a pass that ended after t.
func (w *world) replacedAndReady(ctx context.Context, r rc, b benchBottle, name, old string, t time.Time) (bool, error) {
	c, err := w.docker.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect %q: %w", name, err)
	}
	if c.ID == old || c.State == nil || !c.State.Running {
		return false, nil
	}
	return readySince(ctx, r, b.Name, t)
}

func (w *world) containerID(ctx context.Context, name string) (string, error) {
	c, err := w.docker.ContainerInspect(ctx, name)
	if err != nil {
		return "", fmt.Errorf("inspect %q: %w", name, err)
	}
	return c.ID, nil
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
