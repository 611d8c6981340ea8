package smolvm

import (
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// createCall builds `machine create` for w with image img (already resolved).
// Flag order is fixed and every list is sorted, so the same Want always
// gives the same argv.
func (d *Driver) createCall(w bottle.Want, img source) (call, error) {
	if w.Labels[bottle.LabelManagedBy] != bottle.ManagedByValue {
		// Without it Observe would never see the machine again: it would leak.
		return call{}, fmt.Errorf("want has no %s=%s label: %w", bottle.LabelManagedBy, bottle.ManagedByValue, cerrdefs.ErrInvalidArgument)
	}
	if img.ref == "" {
		return call{}, fmt.Errorf("no image: %w", cerrdefs.ErrInvalidArgument)
	}
	if !w.BundleAddr.IsValid() {
		return call{}, fmt.Errorf("no bundle address to allow: %w", cerrdefs.ErrInvalidArgument)
	}
	args := []string{"machine", "create", "--name", w.Name}

	labels := machineLabels(w)
	keys := make([]string, 0, len(labels))
	for k := range labels {
		// smolvm splits on the first '=' and rejects an empty key.
		if k == "" || strings.Contains(k, "=") {
			return call{}, fmt.Errorf("label key %q: %w", k, cerrdefs.ErrInvalidArgument)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+labels[k])
	}

	args = append(args, "--image", img.ref)
	if img.size > d.archiveLimit {
		// smolvm refuses a larger archive unless told (image_source.rs
		// max_archive_bytes); the flag takes a byte count.
		args = append(args, "--max-image-size", strconv.FormatInt(img.size, 10))
	}
	args = append(args,
		"--cpus", strconv.Itoa(w.Guest.CPUs),
		"--mem", strconv.Itoa(w.Guest.MemoryMiB))

	// The bundle comes first and exactly: the guest reaches the world only
	// through its daemons, plus whatever the spec allows on top.
	bundleAddr := w.BundleAddr.Unmap()
	if !bundleAddr.Is4() {
		// --dns is an Ipv4Addr in smolvm (clap refuses anything else), and
		// without it the guest's DNS goes to 1.1.1.1.
		return call{}, fmt.Errorf("bundle address %s is IPv6, but smolvm's --dns takes an IPv4 address only, so the guest's DNS could not be pointed at the bundle; give the bottle an IPv4 subnet: %w",
			bundleAddr, cerrdefs.ErrInvalidArgument)
	}
	args = append(args, "--allow-cidr", netip.PrefixFrom(bundleAddr, bundleAddr.BitLen()).String())
	for _, c := range w.Guest.AllowCIDRs {
		args = append(args, "--allow-cidr", c)
	}
	// Always the bundle, even when it runs no resolver: smolvm's gateway
	// intercepts UDP/53 to any address and forwards it without a CIDR check
	// (smolvm-network stack.rs 549-553), to --dns, else to 1.1.1.1
	// (smolvm-network lib.rs 96, 182), a channel out. With no resolver in
	// the bundle, name lookups simply fail (fail closed).
	args = append(args, "--dns", bundleAddr.String())

	if ws := w.Guest.Workspace; ws != nil {
		// HOST:GUEST[:ro], split by smolvm from the right (CONTRACT.md):
		// CheckPaths refuses a ':' in either path.
		if err := ws.CheckPaths(); err != nil {
			return call{}, fmt.Errorf("%w: %w", err, cerrdefs.ErrInvalidArgument)
		}
		v := ws.HostPath + ":" + ws.GuestPath
		if ws.ReadOnly {
			v += ":ro"
		}
		args = append(args, "-v", v)
	}

	envArgs, childEnv, err := guestEnv(w)
	if err != nil {
		return call{}, err
	}
	args = append(args, envArgs...)
	return call{args: args, env: childEnv, timeout: d.opts.CreateTimeout}, nil
}

// machineLabels are the labels a machine is created with: the Want's and
// those that record its host layer.
func machineLabels(w bottle.Want) map[string]string {
	out := maps.Clone(w.Labels)
	maps.Copy(out, layerLabels(w))
	return out
}

// guestEnv returns the -e flags for the guest's environment, as the
// reconciler resolved it, and the KEY=VALUE entries to add to smolvm's own
// environment. It decides only how each variable travels.
//
// Values are kept off the command line, which any local user can read in
// /proc: the flag is `-e KEY`, which smolvm resolves from its own
// environment (util::parse_env_spec), where the value is put. Two kinds go
// as `-e KEY=VALUE` instead, because in smolvm's own environment they would
// change how smolvm itself runs: the bundle's proxy settings, which would
// send its host-side pulls to the bundle, and spec.env names in
// hostSensitive (PATH, TZ, LANG...), whose values are public anyway (they are
// in the spec, reviewed in git). An envFromHost name in hostSensitive is
// refused: its value is a secret and could only go on the command line.
func guestEnv(w bottle.Want) (args, childEnv []string, err error) {
	for _, v := range w.Guest.Env {
		if !validEnvKey(v.Name) {
			return nil, nil, fmt.Errorf("env name %q is not valid: %w", v.Name, cerrdefs.ErrInvalidArgument)
		}
		switch {
		case v.Source == bottle.EnvFromBundle, v.Source == bottle.EnvFromSpec && hostSensitive(v.Name):
			args = append(args, "-e", v.Name+"="+v.Value)
		case hostSensitive(v.Name):
			// Its value could reach the guest only on smolvm's command
			// line (readable by every local user in /proc), since in
			// smolvm's own environment it would change how smolvm runs.
			return nil, nil, fmt.Errorf("envFromHost %q cannot be passed to a smolvm guest without putting its secret value on smolvm's command line (in smolvm's own environment it would change how smolvm itself runs); set it in spec.env if it is not secret, or in the image: %w",
				v.Name, cerrdefs.ErrInvalidArgument)
		default:
			args = append(args, "-e", v.Name)
			childEnv = append(childEnv, v.Name+"="+v.Value)
		}
	}
	return args, childEnv, nil
}

// validEnvKey rejects what smolvm would silently drop or misread: an empty
// name, '=' (it splits on the first one) and whitespace or NUL.
func validEnvKey(k string) bool {
	return k != "" && !strings.ContainsAny(k, "= \t\r\n\x00")
}

// hostSensitive reports whether setting k in smolvm's own environment could
// change what smolvm itself does on the host (see spec.SmolvmHostEnv).
func hostSensitive(k string) bool { return spec.SmolvmHostEnv(k) }
