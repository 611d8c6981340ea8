package reconciler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// inputs fills in w's role inputs from s (defaults applied): the network's
// shape, the bundle's daemons and allow list, or the guest's settings and
// environment. It reads nothing but s, so a plan stays pure: the guest's
// environment holds spec.env with its values and spec.envFromHost by name
// only, until resolveEnv completes it just before the guest is created.
func inputs(w *bottle.Want, s spec.Spec) {
	switch w.Role {
	case bottle.RoleNetwork:
		// A docker guest lives on the bottle network itself, and is kept
		// from the host by a bridge with no host address (see dockernet).
		w.Shape = bottle.ShapeInternalBridge
		if s.Guest == spec.GuestDocker {
			w.Shape = bottle.ShapeHostless
		}
	case bottle.RoleBundle:
		w.Bundle = bottle.BundleInputs{Daemons: slices.Clone(s.Daemons), Allow: slices.Clone(s.Egress.Allow)}
	case bottle.RoleGuest:
		env := make([]bottle.EnvVar, 0, len(s.Env)+len(s.EnvFromHost))
		for k, v := range s.Env {
			env = append(env, bottle.EnvVar{Name: k, Source: bottle.EnvFromSpec, Value: v})
		}
		for _, k := range s.EnvFromHost {
			env = append(env, bottle.EnvVar{Name: k, Source: bottle.EnvFromHost})
		}
		sortEnv(env)
		var ws *spec.Workspace
		if s.Workspace != nil {
			c := *s.Workspace
			ws = &c
		}
		w.Guest = bottle.GuestInputs{
			Kind: s.Guest, Image: s.Image, PullPolicy: s.PullPolicy,
			Env: env, EmptySpecEnv: s.Env != nil && len(s.Env) == 0,
			Daemons: slices.Clone(s.Daemons), AllowCIDRs: slices.Clone(s.AllowCIDRs),
			CPUs: s.Resources.CPUs, MemoryMiB: s.Resources.MemoryMiB, Workspace: ws,
		}
	}
}

// resolveEnv completes a guest Want's environment, the one place it is
// assembled: the values of the envFromHost variables, read with getenv, and
// the bundle's proxy settings, which need the bundle's address. It returns
// a copy; w is the plan's and stays without secrets. A host variable that is
// not set is a failed precondition naming it (never a value): trying again
// will not help until the reconciler's environment changes.
func resolveEnv(w bottle.Want, getenv func(string) (string, bool)) (bottle.Want, error) {
	if w.Role != bottle.RoleGuest {
		return w, nil
	}
	proxy := bundle.GuestEnv(w.Guest.Daemons, w.BundleAddr)
	env := make([]bottle.EnvVar, 0, len(w.Guest.Env)+len(proxy))
	seen := make(map[string]bool, len(w.Guest.Env))
	for _, v := range w.Guest.Env {
		if seen[v.Name] {
			return w, fmt.Errorf("env %q is set by both spec.env and spec.envFromHost; keep it in one place: %w", v.Name, cerrdefs.ErrInvalidArgument)
		}
		seen[v.Name] = true
		if _, clash := proxy[v.Name]; clash || spec.IsReservedEnv(v.Name) {
			// The loader refuses these; a spec must never point the guest
			// around its bundle, should that ever slip.
			return w, fmt.Errorf("%s %q is reserved for the bundle's proxy settings: %w", v.Source, v.Name, cerrdefs.ErrInvalidArgument)
		}
		if v.Source == bottle.EnvFromHost {
			val, ok := getenv(v.Name)
			if !ok {
				return w, fmt.Errorf("host environment variable %q named in spec.envFromHost is not set; set it in the reconciler's environment and restart it, or remove it from spec.envFromHost: %w", v.Name, cerrdefs.ErrFailedPrecondition)
			}
			v.Value = val
		}
		env = append(env, v)
	}
	for k, v := range proxy {
		env = append(env, bottle.EnvVar{Name: k, Source: bottle.EnvFromBundle, Value: v})
	}
	sortEnv(env)
	w.Guest.Env = env
	return w, nil
}

func sortEnv(env []bottle.EnvVar) {
	slices.SortFunc(env, func(a, b bottle.EnvVar) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(string(a.Source), string(b.Source)))
	})
}
