package sidecar

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/policy"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/resolver"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostaddr"
)

// DefaultReadyTimeout is Options.ReadyTimeout's default.
const DefaultReadyTimeout = 30 * time.Second

// Options configures the bundle driver. The zero value means every default.
type Options struct {
	// Pool is the IPv4 range bottle subnets are allocated from (the network
	// driver's option of that name), passed to bundles as a range to
	// refuse; default spec.DefaultPool.
	Pool netip.Prefix
	// LockPath is the network driver's subnet lock, held while the egress
	// network is made so concurrent creates make one; default
	// dockerx.DefaultLockPath.
	LockPath string
	// BundleBinary is the bottle-reconcile binary put in the bundle image;
	// default os.Executable(). A dynamically linked one brings its loader
	// and shared libraries from this host.
	BundleBinary string
	// ReadyTimeout bounds how long Create waits for a new bundle's ready
	// line; default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// DNSUpstream is the resolver bundles forward allowlisted names to, as
	// host:port; empty means the bundle's own /etc/resolv.conf (Docker's
	// embedded DNS). It must be reachable from the egress network.
	DNSUpstream string
	// DNSQueryRate (queries a second), DNSQueryBurst and MaxWildcardBytes
	// are the bundles' DNS limits (bundle.Config); zero means the bundle's
	// defaults, and only values set are hashed, so leaving them unset
	// recreates nothing.
	DNSQueryRate     float64
	DNSQueryBurst    int
	MaxWildcardBytes int
	// HostAddrs lists the host's addresses bundles must refuse; default
	// hostaddr.Unrefused with the pool. A test hook.
	HostAddrs func() ([]netip.Addr, error)
}

// withDefaults fills in what o leaves out and checks the rest.
func (o Options) withDefaults() (Options, error) {
	pool, err := dockerx.Pool(driverName, o.Pool)
	if err != nil {
		return o, err
	}
	o.Pool = pool
	if o.LockPath == "" {
		o.LockPath = dockerx.DefaultLockPath
	}
	if o.DNSQueryRate < 0 || o.DNSQueryBurst < 0 || o.MaxWildcardBytes < 0 {
		return o, fmt.Errorf("dockernet: DNS limits must not be negative (query rate %g, burst %d, wildcard bytes %d)", o.DNSQueryRate, o.DNSQueryBurst, o.MaxWildcardBytes)
	}
	// A limit set to its default is no limit set: it is not hashed, so
	// spelling out the default recreates nothing.
	if o.DNSQueryRate == float64(resolver.DefaultQueryRate) {
		o.DNSQueryRate = 0
	}
	if o.DNSQueryBurst == resolver.DefaultQueryBurst {
		o.DNSQueryBurst = 0
	}
	if o.MaxWildcardBytes == policy.DefaultMaxWildcardBytes {
		o.MaxWildcardBytes = 0
	}
	if o.HostAddrs == nil {
		pool := o.Pool
		o.HostAddrs = func() ([]netip.Addr, error) { return hostaddr.Unrefused([]netip.Prefix{pool}) }
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	return o, nil
}

// base is what the driver holds.
type base struct {
	api  dockerAPI
	opts Options
	log  logr.Logger
	lock *dockerx.SubnetLock
}

func newBase(api dockerAPI, opts Options, log logr.Logger) (base, error) {
	if api == nil {
		return base{}, errors.New("dockernet: no Docker client")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return base{}, err
	}
	return base{api: api, opts: opts, log: log.WithName("dockernet"), lock: dockerx.NewSubnetLock(opts.LockPath)}, nil
}

// bundleBinary returns the binary to put in the bundle image.
func (o Options) bundleBinary() (string, error) {
	if o.BundleBinary != "" {
		return o.BundleBinary, nil
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("dockernet: find own executable for the bundle image: %w", err)
	}
	return p, nil
}
