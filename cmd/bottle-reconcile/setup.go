package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet/sidecar"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/smolvm"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// common holds the flags every command that touches bottles shares.
type common struct {
	dir             string
	stateDir        string
	instance        string
	pool            netip.Prefix
	outsidePool     bool
	smolvmBin       string
	smolvmHostLayer bool
	smolvmTimeout   time.Duration
	smolvmCreate    time.Duration
	bundleBin       string
	dnsUpstream     string
	dnsQueryRate    float64
	dnsQueryBurst   int
	dnsWildcard     int
	concurrency     int
	maxDeletes      int
	allowMassDelete bool
	allowEmpty      bool
	lockTimeout     time.Duration
	logFormat       string
	verbose         int
}

func (c *common) register(fs *flag.FlagSet) {
	c.pool = spec.DefaultPool
	fs.StringVar(&c.stateDir, "state-dir", "", "directory for the lock and status files (default /var/lib/bottle-reconcile/INSTANCE as root, else ~/.local/state/bottle-reconcile/INSTANCE)")
	fs.StringVar(&c.instance, "instance", "", "name of this reconciler instance, carried by every resource it owns (default: derived from the spec directory's path)")
	fs.Var(prefixFlag{&c.pool}, "subnet-pool", "IPv4 range bottle subnets are allocated from, in /29s")
	fs.BoolVar(&c.outsidePool, outsidePoolFlag, false, outsidePoolUsage)
	fs.StringVar(&c.smolvmBin, "smolvm", "smolvm", "smolvm binary: a path, or a name looked up in PATH")
	fs.BoolVar(&c.smolvmHostLayer, "smolvm-host-layer", true, "run each smolvm bottle's VMM in its own cgroup behind host firewall rules that let it reach only its bundle and allowCIDRs (needs cgroup2); false leaves smolvm's own egress policy as the only one")
	fs.DurationVar(&c.smolvmTimeout, "smolvm-timeout", smolvm.DefaultTimeout, "how long one smolvm call (ls, stop, delete, ...) may take before it is killed and its bottle fails this pass")
	fs.DurationVar(&c.smolvmCreate, "smolvm-create-timeout", smolvm.DefaultCreateTimeout, "how long a smolvm machine create or start (which boots the VM) may take before it is killed")
	fs.StringVar(&c.bundleBin, "bundle-binary", "", "bottle-reconcile binary to put in the bundle image (default: this binary; a dynamically linked one brings its loader and libraries from this host)")
	fs.StringVar(&c.dnsUpstream, "dns-upstream", "", "host:port of the resolver bundles forward allowlisted names to (default: the bundle's /etc/resolv.conf); must be reachable from the egress network")
	fs.Float64Var(&c.dnsQueryRate, "dns-query-rate", 0, "DNS queries a second each bundle's resolver answers before it refuses (0: the bundle's default, 100)")
	fs.IntVar(&c.dnsQueryBurst, "dns-query-burst", 0, "DNS queries each bundle's resolver answers at once above --dns-query-rate (0: the bundle's default, 1000)")
	fs.IntVar(&c.dnsWildcard, "dns-max-wildcard-bytes", 0, "most bytes a name may add before a wildcard rule's suffix, in the resolver and the gate (0: the bundle's default, 63)")
	fs.IntVar(&c.concurrency, "concurrency", 4, "bottles worked on at once")
	fs.IntVar(&c.maxDeletes, "max-deletes", 3, "most bottles one pass may tear down because their spec is gone")
	fs.BoolVar(&c.allowMassDelete, "allow-mass-delete", false, "lift --max-deletes")
	fs.BoolVar(&c.allowEmpty, "allow-empty", false, "let a spec directory with no spec files tear down every bottle (otherwise it prunes nothing)")
	fs.DurationVar(&c.lockTimeout, "lock-timeout", 0, "wait this long for another reconciler of this instance to finish (0: exit 3 at once)")
	fs.StringVar(&c.logFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text or json")
	fs.IntVar(&c.verbose, "v", 0, "log verbosity (1 shows per-driver detail)")
}

// resolve settles the spec directory, instance and state directory.
func (c *common) resolve(dirArg string) error {
	if dirArg == "" {
		dirArg = "specs"
	}
	abs, err := filepath.Abs(dirArg)
	if err != nil {
		return fmt.Errorf("spec directory %s: %w", dirArg, err)
	}
	c.dir = abs
	if c.instance == "" {
		c.instance = defaultInstance(abs)
	} else if !bottle.ValidInstance(c.instance) {
		return fmt.Errorf("--instance %q: use 1-63 characters of a-z, 0-9 and '-'", c.instance)
	}
	if c.stateDir == "" {
		c.stateDir = defaultStateDir(c.instance)
	}
	if st, err := filepath.Abs(c.stateDir); err == nil {
		if rel, err := filepath.Rel(c.dir, st); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("--state-dir %s is inside the spec directory %s; status writes there would look like spec changes: pick a directory outside it", c.stateDir, c.dir)
		}
	}
	if c.maxDeletes < 0 {
		return errors.New("--max-deletes must be 0 or more; use --allow-mass-delete to lift it")
	}
	if c.concurrency < 1 {
		return errors.New("--concurrency must be 1 or more")
	}
	// Zero would mean the driver's default, a silent surprise: refuse it.
	if c.smolvmTimeout <= 0 {
		return fmt.Errorf("--smolvm-timeout %s: must be more than 0 (e.g. 30s)", c.smolvmTimeout)
	}
	if c.smolvmCreate <= 0 {
		return fmt.Errorf("--smolvm-create-timeout %s: must be more than 0 (e.g. 2m)", c.smolvmCreate)
	}
	return nil
}

// defaultInstance names an instance after its spec directory, so two
// reconcilers on two directories never claim each other's bottles.
func defaultInstance(absDir string) string {
	sum := sha256.Sum256([]byte(absDir))
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, filepath.Base(absDir))
	base = strings.Trim(base, "-")
	if len(base) > 20 {
		base = base[:20]
	}
	if base == "" {
		base = "specs"
	}
	return base + "-" + hex.EncodeToString(sum[:4])
}

func defaultStateDir(instance string) string {
	if os.Geteuid() == 0 {
		return filepath.Join("/var/lib/bottle-reconcile", instance)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "bottle-reconcile", instance)
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "bottle-reconcile", instance)
}

// logger builds the injected logger: text for a terminal, JSON otherwise.
func (c *common) logger(stderr io.Writer) logr.Logger {
	format := c.logFormat
	if format == "auto" {
		format = "json"
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	opts := &slog.HandlerOptions{Level: slog.Level(-c.verbose)}
	if format == "text" {
		return logr.FromSlogHandler(slog.NewTextHandler(stderr, opts))
	}
	return logr.FromSlogHandler(slog.NewJSONHandler(stderr, opts))
}

// env is everything a command needs to act on bottles.
type env struct {
	rec    *reconciler.Reconciler
	docker *client.Client
	bundle *sidecar.Driver
	guests map[string]reconciler.Driver // by spec.guest kind
	log    logr.Logger
}

func (e *env) Close() {
	if e.docker != nil {
		e.docker.Close()
	}
}

// openLocked builds the drivers and takes the instance lock, for commands
// that change bottles. It prints why it failed and returns the exit code;
// the caller runs the returned release when it is done.
func (c *common) openLocked(ctx context.Context, stderr io.Writer) (e *env, release func(), code int) {
	e, err := c.build(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return nil, nil, exitFail
	}
	lock, code := lockInstance(ctx, c, stderr)
	if lock == nil {
		e.Close()
		return nil, nil, code
	}
	return e, func() { lock.Release(); e.Close() }, exitOK
}

// open resolves the spec directory and wires the drivers, for a command
// that needs no instance lock; failCode is the command's exit code when the
// wiring fails. A nil env comes with the code to exit with.
func (c *common) open(dir string, stderr io.Writer, failCode int) (*env, int) {
	if err := c.resolve(dir); err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return nil, exitUsage
	}
	e, err := c.build(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return nil, failCode
	}
	return e, exitOK
}

// networkOptions are the network driver's settings from flags.
func (c *common) networkOptions() dockernet.Options { return dockernet.Options{Pool: c.pool} }

// sidecarOptions are the bundle driver's settings from flags.
func (c *common) sidecarOptions() sidecar.Options {
	return sidecar.Options{Pool: c.pool, BundleBinary: c.bundleBin, DNSUpstream: c.dnsUpstream,
		DNSQueryRate: c.dnsQueryRate, DNSQueryBurst: c.dnsQueryBurst, MaxWildcardBytes: c.dnsWildcard}
}

// build wires the drivers and the reconciler.
func (c *common) build(stderr io.Writer) (*env, error) {
	log := c.logger(stderr)
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	netd, err := dockernet.NewNetworkDriver(cli, c.networkOptions(), log)
	if err != nil {
		cli.Close()
		return nil, err
	}
	bund, err := sidecar.New(cli, c.sidecarOptions(), log)
	if err != nil {
		cli.Close()
		return nil, err
	}
	guests := map[string]reconciler.Driver{}
	guests[spec.GuestSmolvm], err = c.smolvmDriver(cli, log)
	if err != nil {
		cli.Close()
		return nil, err
	}
	if err := addDockerGuest(guests, cli, log); err != nil {
		cli.Close()
		return nil, err
	}
	maxDeletes := c.maxDeletes
	if c.allowMassDelete {
		maxDeletes = -1
	}
	rec := reconciler.New(reconciler.Config{
		Dir: c.dir, Instance: c.instance, StateDir: c.stateDir, Pool: c.pool, AllowSubnetOutsidePool: c.outsidePool,
		MaxDeletes: maxDeletes, Concurrency: c.concurrency, AllowEmpty: c.allowEmpty,
	}, netd, bund, guests, log)
	return &env{rec: rec, docker: cli, bundle: bund, guests: guests, log: log}, nil
}

// smolvmDriver returns the smolvm driver, or a stand-in that reports why it
// can neither observe nor create when the binary is not installed. A
// machine made before the binary went missing may still run, so not being
// able to look is not "nothing there".
func (c *common) smolvmDriver(cli *client.Client, log logr.Logger) (reconciler.Driver, error) {
	if _, err := exec.LookPath(c.smolvmBin); err != nil {
		return &unavailable{kind: smolvm.Kind, role: bottle.RoleGuest,
			err: fmt.Errorf("smolvm %q is not installed (%v): install smolvm 1.8+, pass --smolvm PATH, or use spec.guest: docker", c.smolvmBin, err)}, nil
	}
	return smolvm.New(log, smolvm.Options{Binary: c.smolvmBin,
		Timeout: c.smolvmTimeout, CreateTimeout: c.smolvmCreate, Images: smolvmImages(cli, log), NoHostLayer: !c.smolvmHostLayer})
}

// unavailable stands in for a driver whose runtime is not installed.
type unavailable struct {
	kind string
	role bottle.Role
	err  error
}

func (u *unavailable) Kind() string      { return u.kind }
func (u *unavailable) Role() bottle.Role { return u.role }

// Observe says the runtime cannot be observed: a guest of this kind may
// still run (made before its runtime went missing from PATH), so its
// bottles are held rather than taken for empty.
func (u *unavailable) Observe(context.Context) ([]bottle.Resource, error) {
	return nil, fmt.Errorf("%w: %w", bottle.ErrUnobservable, u.err)
}
func (u *unavailable) Create(context.Context, bottle.Want) (bottle.Resource, error) {
	return bottle.Resource{}, u.err
}
func (u *unavailable) Delete(context.Context, bottle.Resource) error { return u.err }

// Version reports, in status, why the runtime is missing.
func (u *unavailable) Version(context.Context) (string, error) { return "", u.err }
