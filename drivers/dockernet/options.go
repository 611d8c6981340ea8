package dockernet

import (
	"errors"
	"net/netip"

	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
)

// Options configures the network driver. The zero value means every
// default.
type Options struct {
	// Pool is the IPv4 range bottle subnets are allocated from; default
	// spec.DefaultPool.
	Pool netip.Prefix
	// LockPath is the file locked (flock) across list, choose and create, so
	// concurrent creates, in this process or another, never pick the same
	// subnet; default dockerx.DefaultLockPath.
	LockPath string
}

// withDefaults fills in what o leaves out and checks the rest.
func (o Options) withDefaults() (Options, error) {
	pool, err := dockerx.Pool("dockernet", o.Pool)
	if err != nil {
		return o, err
	}
	o.Pool = pool
	if o.LockPath == "" {
		o.LockPath = dockerx.DefaultLockPath
	}
	return o, nil
}

// base is what the network driver holds.
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
