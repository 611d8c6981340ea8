// Package smolvm is the guest driver that runs bottles' guests as smolvm
// microVMs by driving the smolvm CLI (1.8 or later; CONTRACT.md lists every
// flag, field, message and exit code it relies on).
//
// Machines are recognised by their labels only (bottle/labels.go); the
// CLI's `machine ls --json` is the one listing call per Observe. Every call
// has a timeout and runs in its own process group, so a hung smolvm never
// hangs the reconciler.
//
// Env values are treated as secrets: they are passed as `-e KEY` with the
// value in smolvm's own environment, so they never show in the process
// table, and every error redacts -e values. Apart from those values smolvm
// gets a minimal environment (env.go): the reconciler's proxies, SMOLVM_*
// and the like never reach it. Every image is made present in the host's
// Docker daemon (pulled there as spec.pullPolicy says, see internal/images)
// and exported once to a cache of `docker save` archives named by image ID,
// each with its sha256 beside it; smolvm is always given an archive path, so
// the guest never pulls through its egress policy. Archives no machine uses
// are pruned after each create once they have gone unused for
// Options.CacheMaxAge. Each bottle's VMM runs behind a host layer of its own
// (hostlayer.go).
package smolvm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
)

// Kind is the driver's kind, also the spec's guest value.
const Kind = "smolvm"

// Defaults for Options.
const (
	DefaultBinary        = "smolvm"
	DefaultTimeout       = 30 * time.Second
	DefaultCreateTimeout = 2 * time.Minute
	DefaultCacheMaxAge   = 7 * 24 * time.Hour
	// DefaultArchiveLimit is smolvm's own cap on an --image archive (8 GiB,
	// image_source.rs max_archive_bytes); a larger archive gets
	// --max-image-size with its size.
	DefaultArchiveLimit = 8 << 30
)

// Options configure a Driver. The zero value of each field means its default.
type Options struct {
	// Binary is the smolvm executable, a path or a name looked up in PATH.
	// Default "smolvm" (the installed bash wrapper, not smolvm-bin).
	Binary string
	// Timeout bounds every call except create and start. Default 30 s.
	Timeout time.Duration
	// CreateTimeout bounds `machine create` and `machine start`. Default
	// 2 min. The host-side pull and export of the image before the create
	// are bounded by the caller's context only.
	CreateTimeout time.Duration
	// Images pulls images into the host's Docker daemon (as the spec's
	// pullPolicy says) and exports them, so smolvm always gets an archive
	// and never pulls inside the guest; usually a DockerImages over a
	// Docker client. Nil means only local sources (an archive path or a
	// rootfs directory in spec.image) can be created.
	Images ImageExporter
	// CacheDir holds exported image archives, named by image ID. Default
	// <user cache dir>/bottle-reconcile/smolvm-images.
	CacheDir string
	// CacheMaxAge is how long an archive no machine uses is kept after its
	// last use; pruning runs after each create. Default 7 days; negative
	// disables pruning.
	CacheMaxAge time.Duration
	// NoHostLayer turns off the host layer around each bottle's VMM (its
	// own cgroup, and host firewall rules on it; see hostlayer.go), leaving
	// smolvm's own egress policy as the only one.
	NoHostLayer bool
}

// Driver manages smolvm guests. It is safe for concurrent use.
type Driver struct {
	opts Options
	log  logr.Logger
	run  runner
	now  func() time.Time

	// layer is the host layer; nil when Options.NoHostLayer.
	layer *hostLayer
	// archiveLimit is the largest archive smolvm takes without
	// --max-image-size (DefaultArchiveLimit; smaller in tests).
	archiveLimit int64

	mu  sync.Mutex
	ver *semver // cached smolvm version, once known
}

// New returns a Driver. It only fails when no image cache directory can be
// found, and then only if image export is enabled.
func New(log logr.Logger, opts Options) (*Driver, error) {
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CreateTimeout <= 0 {
		opts.CreateTimeout = DefaultCreateTimeout
	}
	if opts.CacheMaxAge == 0 {
		opts.CacheMaxAge = DefaultCacheMaxAge
	}
	if opts.Images != nil {
		if opts.CacheDir == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				return nil, fmt.Errorf("smolvm: image cache dir: %w", err)
			}
			opts.CacheDir = filepath.Join(base, "bottle-reconcile", "smolvm-images")
		}
		// smolvm takes a path as local only when it starts with "/" or "./".
		abs, err := filepath.Abs(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("smolvm: image cache dir: %w", err)
		}
		opts.CacheDir = abs
	}
	d := &Driver{
		opts: opts,
		log:  log.WithName("smolvm"),
		run:  execRunner{binary: opts.Binary},
		now:  time.Now,

		archiveLimit: DefaultArchiveLimit,
	}
	if !opts.NoHostLayer {
		l := newHostLayer(hostfw.ExecRunner{}, "/proc/self/mountinfo", "/proc")
		d.layer = &l
	}
	return d, nil
}

// Kind implements reconciler.Driver.
func (d *Driver) Kind() string { return Kind }

// Role implements reconciler.Driver.
func (d *Driver) Role() bottle.Role { return bottle.RoleGuest }

// exec runs one smolvm call and classifies its outcome.
func (d *Driver) exec(ctx context.Context, c call) (result, error) {
	res, err := d.run.run(ctx, c)
	argv := append([]string{d.opts.Binary}, c.args...)
	if cerr := classify(argv, res, err); cerr != nil {
		return res, cerr
	}
	return res, nil
}

// list makes the one `machine ls --json` call of a pass.
func (d *Driver) list(ctx context.Context) (map[string]machine, error) {
	res, err := d.exec(ctx, call{args: []string{"machine", "ls", "--json"}, timeout: d.opts.Timeout})
	if err != nil {
		return nil, err
	}
	return parseList(res.stdout)
}

// Observe implements reconciler.Driver.
func (d *Driver) Observe(ctx context.Context) ([]bottle.Resource, error) {
	byName, err := d.list(ctx)
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
		cerrdefs.IsDeadlineExceeded(err) {
		// The binary went away (uninstalled, a PATH change, a broken
		// upgrade), or it hangs past its timeout: machines may still run;
		// the reconciler must hold them, and the other guest kinds go on.
		return nil, fmt.Errorf("smolvm: list machines: %w: %w", bottle.ErrUnobservable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("smolvm: list machines: %w", err)
	}
	out := resources(byName)
	if b := bottle.ScopeOf(ctx); b != "" {
		// smolvm lists every machine; a scoped pass checks only its own.
		out = slices.DeleteFunc(out, func(r bottle.Resource) bool { return r.Bottle != b })
	}
	if d.layer != nil {
		for i := range out {
			d.checkLayer(ctx, &out[i], byName[out[i].Name])
		}
	}
	return out, nil
}

// Create implements reconciler.Driver. It creates and then starts the
// machine. When the create succeeds and the start fails, the machine is left
// in place: the next pass observes it as created and starts it.
func (d *Driver) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	r, err := d.create(ctx, w)
	if err != nil {
		return bottle.Resource{}, fmt.Errorf("smolvm: create machine %q: %w", w.Name, err)
	}
	return r, nil
}

func (d *Driver) create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	if err := d.gate(ctx); err != nil {
		return bottle.Resource{}, err
	}
	// Refuse a bad Want before any listing or image export.
	if _, err := d.createCall(w, source{ref: w.Guest.Image}); err != nil {
		return bottle.Resource{}, err
	}
	byName, err := d.list(ctx)
	if err != nil {
		return bottle.Resource{}, err
	}
	if m, ok := byName[w.Name]; ok {
		if !m.ours() {
			return bottle.Resource{}, fmt.Errorf("a machine named %q that bottle-reconcile does not manage already exists; remove or rename it: %w", w.Name, cerrdefs.ErrConflict)
		}
		return bottle.Resource{}, fmt.Errorf("machine %q already exists (instance %q, state %s): %w",
			w.Name, m.Labels[bottle.LabelInstance], m.State, cerrdefs.ErrConflict)
	}
	img, err := d.resolveImage(ctx, w.Guest.Image, w.Guest.PullPolicy)
	if err != nil {
		return bottle.Resource{}, err
	}
	c, err := d.createCall(w, img)
	if err != nil {
		return bottle.Resource{}, err
	}
	if _, err := d.exec(ctx, c); err != nil {
		return bottle.Resource{}, err
	}
	used := imagesInUse(byName)
	used.add(img)
	d.pruneCache(used)

	if err := d.start(ctx, w.Name, machineLabels(w)); err != nil {
		return bottle.Resource{}, fmt.Errorf("created, but not started (the next pass starts it): %w", err)
	}
	r := bottle.Labelled(Kind, bottle.RoleGuest, w.Name, w.Labels)
	r.State, r.Detail = bottle.StateRunning, "running"
	return r, nil
}

// start starts the machine name, whose labels are labels; with the host
// layer on, its VMM starts in the bottle's cgroup, behind its rules.
func (d *Driver) start(ctx context.Context, name string, labels map[string]string) error {
	c := call{args: []string{"machine", "start", "--name", name}, timeout: d.opts.CreateTimeout}
	if d.layer != nil {
		s, err := layerOf(labels)
		if err != nil {
			return fmt.Errorf("host layer: %w", err)
		}
		if c.cgroup, err = d.layer.prepare(ctx, s); err != nil {
			return err
		}
	}
	_, err := d.exec(ctx, c)
	return err
}

// ownedOrGone checks, with one listing, that the machine called r.Name is
// ours (and r's instance's, when r names one) before it is started, stopped
// or deleted: a machine of that name that someone else made since the last
// Observe is never touched, and the error names it. found is false when
// there is no such machine.
func (d *Driver) ownedOrGone(ctx context.Context, r bottle.Resource) (found bool, err error) {
	byName, err := d.list(ctx)
	if err != nil {
		return false, err
	}
	m, ok := byName[r.Name]
	switch {
	case !ok:
		return false, nil
	case !m.ours():
		return true, fmt.Errorf("a machine named %q that bottle-reconcile does not manage exists; leaving it alone: %w", r.Name, cerrdefs.ErrConflict)
	case r.Instance != "" && m.Labels[bottle.LabelInstance] != r.Instance:
		return true, fmt.Errorf("machine %q belongs to bottle-reconcile instance %q, not %q; leaving it alone: %w",
			r.Name, m.Labels[bottle.LabelInstance], r.Instance, cerrdefs.ErrConflict)
	}
	return true, nil
}

// Start implements reconciler.Starter. Starting a running machine is a
// no-op in smolvm (exit 0).
func (d *Driver) Start(ctx context.Context, r bottle.Resource) error {
	if _, err := d.ownedOrGone(ctx, r); err != nil {
		return fmt.Errorf("smolvm: start machine %q: %w", r.Name, err)
	}
	if err := d.start(ctx, r.Name, r.Labels); err != nil {
		return fmt.Errorf("smolvm: start machine %q: %w", r.Name, err)
	}
	return nil
}

// Stop implements reconciler.Starter. Stopping a machine that is not
// running is a no-op in smolvm (exit 0).
func (d *Driver) Stop(ctx context.Context, r bottle.Resource) error {
	if _, err := d.ownedOrGone(ctx, r); err != nil {
		return fmt.Errorf("smolvm: stop machine %q: %w", r.Name, err)
	}
	_, err := d.exec(ctx, call{args: []string{"machine", "stop", "--name", r.Name}, timeout: d.opts.Timeout})
	if err != nil {
		return fmt.Errorf("smolvm: stop machine %q: %w", r.Name, err)
	}
	return nil
}

// Delete implements reconciler.Driver. -f is required: without it smolvm
// stops the machine, prompts, and on EOF exits 0 without deleting. A machine
// that is not listed, or vanishes before the delete ("vm not found"), is
// success; one that is not ours is refused.
func (d *Driver) Delete(ctx context.Context, r bottle.Resource) error {
	found, err := d.ownedOrGone(ctx, r)
	if err != nil {
		return fmt.Errorf("smolvm: delete machine %q: %w", r.Name, err)
	}
	if found {
		_, err = d.exec(ctx, call{args: []string{"machine", "delete", "--name", r.Name, "-f"}, timeout: d.opts.Timeout})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("smolvm: delete machine %q: %w", r.Name, err)
		}
	}
	// The layer goes after its VMM, also when the machine went first.
	if d.layer != nil {
		if s, lerr := layerOf(r.Labels); lerr == nil {
			if err := d.layer.remove(ctx, s); err != nil {
				return fmt.Errorf("smolvm: delete machine %q: %w", r.Name, err)
			}
		}
	}
	return nil
}
