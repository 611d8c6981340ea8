package smolvm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/cgroup2"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// The host layer. smolvm keeps a guest in with its own egress policy,
// enforced by a gateway that runs inside the VMM process, in the host's
// network namespace: a bug there is a bug on the host side, where every
// address of the host is one connect away. So each bottle's VMM also runs
// in a cgroup (v2) of its own, and host firewall rules on sockets of that
// cgroup (chain VMMChain, jumped to first from OUTPUT, for IPv4 and IPv6)
// let it reach only its bundle's daemons and the spec's allowCIDRs. The
// host's loopback, 0.0.0.0, the metadata address and every other bottle's
// bundle are refused by the kernel whatever the VMM does.
//
// A machine carries what its rules are made from in labels (labelReach,
// labelAllow, bottle.LabelBundleAddr), so a pass can check them and a
// repair can put them back from the listing alone.

// VMMChain holds every smolvm bottle's host layer rules.
const VMMChain = "BOTTLE-VMM"

const (
	chainOutput = "OUTPUT"
	// cgroupBase is the cgroup, under the cgroup2 root, that holds one
	// cgroup per instance and, in it, one per bottle.
	cgroupBase = "bottle-reconcile"
	// layerComment starts the comment of every host layer rule; the rest
	// is "<instance> <bottle>".
	layerComment = "bottle-reconcile "
)

// Labels a machine carries for its host layer.
const (
	labelReach = "dev.bottle-reconcile.reach" // the bundle daemons it may reach
	labelAllow = "dev.bottle-reconcile.allow" // the spec's allowCIDRs, comma-separated
)

var vmmJump = []string{"-j", VMMChain}

// layerSpec is what decides one bottle's host layer.
type layerSpec struct {
	Instance, Bottle string
	Bundle           netip.Addr
	Egress, DNS      bool
	Allow            []netip.Prefix
}

// layerLabels returns the labels that record w's host layer.
func layerLabels(w bottle.Want) map[string]string {
	var reach []string
	for _, d := range []string{spec.DaemonEgress, spec.DaemonDNS} {
		if w.Guest.Runs(d) {
			reach = append(reach, d)
		}
	}
	return map[string]string{
		labelReach: strings.Join(reach, ","), labelAllow: strings.Join(w.Guest.AllowCIDRs, ","),
		bottle.LabelBundleAddr: w.BundleAddr.Unmap().String(),
	}
}

// layerOf reads a machine's host layer from its labels.
func layerOf(labels map[string]string) (layerSpec, error) {
	s := layerSpec{Instance: labels[bottle.LabelInstance], Bottle: labels[bottle.LabelBottle]}
	if !bottle.ValidInstance(s.Instance) || !bottle.ValidInstance(s.Bottle) {
		return s, fmt.Errorf("instance %q or bottle %q cannot name a cgroup or a rule comment", s.Instance, s.Bottle)
	}
	var err error
	if s.Bundle, err = netip.ParseAddr(labels[bottle.LabelBundleAddr]); err != nil || !s.Bundle.Is4() {
		return s, fmt.Errorf("no IPv4 %s label", bottle.LabelBundleAddr)
	}
	reach := strings.Split(labels[labelReach], ",")
	s.Egress, s.DNS = slices.Contains(reach, spec.DaemonEgress), slices.Contains(reach, spec.DaemonDNS)
	for _, c := range strings.Split(labels[labelAllow], ",") {
		if c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return s, fmt.Errorf("%s label: %w", labelAllow, err)
		}
		s.Allow = append(s.Allow, p.Masked())
	}
	return s, nil
}

// cgroup is the bottle's cgroup, relative to the cgroup2 root.
func (s layerSpec) cgroup() string { return cgroupBase + "/" + s.Instance + "/" + s.Bottle }

func (s layerSpec) comment() string { return layerComment + s.Instance + " " + s.Bottle }

// rules returns the bottle's rules of one family in chain order, each as
// the arguments after "-A BOTTLE-VMM", written as iptables-save prints them
// back so that what is installed and what is read compare equal.
func (s layerSpec) rules(fam hostfw.Family) [][]string {
	match := []string{"-m", "cgroup", "--path", s.cgroup(), "-m", "comment", "--comment", s.comment()}
	ret := []string{"-j", "RETURN"}
	var out [][]string
	if fam == hostfw.IPv4 {
		bun := s.Bundle.String() + "/32"
		port := func(proto string, p int) []string {
			return slices.Concat([]string{"-d", bun, "-p", proto, "-m", proto, "--dport", strconv.Itoa(p)}, match, ret)
		}
		if s.Egress {
			out = append(out, port("tcp", bundle.ProxyPort))
		}
		if s.DNS {
			out = append(out, port("udp", bundle.DNSPort), port("tcp", bundle.DNSPort))
		}
	}
	for _, p := range s.Allow {
		if p.Addr().Is4() == (fam == hostfw.IPv4) {
			out = append(out, slices.Concat([]string{"-d", p.String()}, match, ret))
		}
	}
	// Refusals, not drops: a blocked connect fails at once.
	unreachable := "icmp-admin-prohibited"
	if fam == hostfw.IPv6 {
		unreachable = "icmp6-adm-prohibited"
	}
	return append(out,
		slices.Concat([]string{"-p", "tcp"}, match, []string{"-j", "REJECT", "--reject-with", "tcp-reset"}),
		slices.Concat(match, []string{"-j", "REJECT", "--reject-with", unreachable}))
}

var families = []hostfw.Family{hostfw.IPv4, hostfw.IPv6}

// hostLayer puts bottles' VMMs in their cgroups and keeps their rules.
type hostLayer struct {
	// root is the cgroup2 mount point; empty when there is none, and then
	// the layer cannot run (off says why).
	root string
	proc string // /proc, for a VMM's cgroup
	fw   map[hostfw.Family]hostfw.Firewall
	// off says why the layer cannot run on this host; "" when it can.
	off string
}

func newHostLayer(run hostfw.Runner, mountinfo, proc string) hostLayer {
	l := hostLayer{proc: proc, fw: map[hostfw.Family]hostfw.Firewall{}}
	for _, f := range families {
		l.fw[f] = hostfw.NewFirewall(run, f)
	}
	root, err := cgroup2.Root(mountinfo)
	if err != nil {
		l.off = err.Error()
	}
	l.root = root
	return l
}

// unavailable is the error of a layer that cannot run here.
func (l hostLayer) unavailable() error {
	return fmt.Errorf("the host layer around smolvm's VMM cannot run here: %s; fix that, or pass --smolvm-host-layer=false to rely on smolvm's own egress policy alone", l.off)
}

// dir is the bottle's cgroup directory.
func (l hostLayer) dir(s layerSpec) string {
	return filepath.Join(l.root, filepath.FromSlash(s.cgroup()))
}

// prepare makes the bottle's cgroup and installs its rules, before its VMM
// starts in that cgroup: the VMM never runs without them. It returns the
// cgroup directory to start smolvm in.
func (l hostLayer) prepare(ctx context.Context, s layerSpec) (string, error) {
	if l.off != "" {
		return "", l.unavailable()
	}
	dir := l.dir(s)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("host layer of bottle %s: create cgroup: %w", s.Bottle, err)
	}
	if err := l.install(ctx, s); err != nil {
		return "", fmt.Errorf("host layer of bottle %s: %w", s.Bottle, err)
	}
	return dir, nil
}

// install makes the bottle's rules, and the chain and jump they hang off,
// exactly what they should be, in both families.
func (l hostLayer) install(ctx context.Context, s layerSpec) error {
	defer hostfw.Lock()()
	for _, f := range families {
		t, err := l.fw[f].ReadFresh(ctx)
		if err != nil {
			return err
		}
		tx := slices.Concat(t.DeclareTx(VMMChain), t.JumpFirstTx(vmmJump, chainOutput),
			hostfw.ReplaceTx(VMMChain, t.Tagged(VMMChain, s.comment()), s.rules(f)))
		if err := l.fw[f].Apply(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the bottle's rules and its cgroup, which its VMM has left
// by then. The chain and the jump stay for other bottles.
func (l hostLayer) remove(ctx context.Context, s layerSpec) error {
	if l.off != "" {
		return nil // nothing was ever made
	}
	unlock := hostfw.Lock()
	var errs []error
	for _, f := range families {
		t, err := l.fw[f].ReadFresh(ctx)
		if err == nil {
			err = l.fw[f].Apply(ctx, hostfw.DeleteTx(VMMChain, t.Tagged(VMMChain, s.comment())))
		}
		errs = append(errs, err)
	}
	unlock()
	if err := os.Remove(l.dir(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("host layer of bottle %s: %w", s.Bottle, err)
	}
	return nil
}

// drift says how a machine's host layer differs from what it should be,
// or "". pid is its VMM's, 0 when it is not running. The firewall read
// runs iptables-save only when the host's ruleset changed since the last
// read (hostfw.NewFirewall), so a pass over one bottle reads it too.
func (l hostLayer) drift(ctx context.Context, s layerSpec, pid int) string {
	if l.off != "" {
		return "host layer cannot run here: " + l.off
	}
	for _, f := range families {
		t, err := l.fw[f].Read(ctx)
		if err != nil {
			return "host layer rules cannot be checked: " + err.Error()
		}
		switch {
		case !t.Chains[VMMChain]:
			return fmt.Sprintf("host layer chain %s missing (%s)", VMMChain, f)
		case !hostfw.First(t.Rules[chainOutput], vmmJump):
			return fmt.Sprintf("host layer jump to %s is not first in %s (%s)", VMMChain, chainOutput, f)
		}
		have := t.Tagged(VMMChain, s.comment())
		switch {
		case len(have) == 0:
			return fmt.Sprintf("host layer rules missing (%s)", f)
		case !slices.EqualFunc(have, s.rules(f), slices.Equal):
			return fmt.Sprintf("host layer rules incomplete (%s)", f)
		}
	}
	if pid > 0 {
		in, err := l.holds(s, pid)
		switch {
		case err != nil:
			return "host layer cgroup cannot be checked: " + err.Error()
		case !in:
			return fmt.Sprintf("VMM (pid %d) runs outside its host layer cgroup %s", pid, s.cgroup())
		}
	}
	return ""
}

// holds reports whether pid is in the bottle's cgroup. A process that is
// gone is in none, and that is for the listing to notice, not an error.
func (l hostLayer) holds(s layerSpec, pid int) (bool, error) {
	p, err := cgroup2.Of(l.proc, pid)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return p == "/"+s.cgroup() || strings.HasPrefix(p, "/"+s.cgroup()+"/"), nil
}

// repair puts the bottle's rules back and moves its VMM into its cgroup.
// Sockets the VMM opened outside it keep their old cgroup until closed;
// new ones are held.
func (l hostLayer) repair(ctx context.Context, s layerSpec, pid int) error {
	dir, err := l.prepare(ctx, s)
	if err != nil {
		return err
	}
	if pid <= 0 {
		return nil
	}
	if in, err := l.holds(s, pid); err == nil && in {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("host layer of bottle %s: move VMM %d into its cgroup: %w", s.Bottle, pid, err)
	}
	return nil
}

// cleanup removes what is left of the instance's host layer once it has no
// bottle: rules of its bottles whose machines went some other way (removed
// by hand, an older reconciler), their empty cgroups, the instance's
// cgroup, and the base cgroup once it holds no instance.
func (l hostLayer) cleanup(ctx context.Context, instance string) error {
	if l.off != "" || !bottle.ValidInstance(instance) {
		return nil
	}
	prefix := layerComment + instance + " "
	unlock := hostfw.Lock()
	var errs []error
	for _, f := range families {
		t, err := l.fw[f].ReadFresh(ctx)
		if err == nil {
			left := t.Matching(VMMChain, func(c string) bool { return strings.HasPrefix(c, prefix) })
			err = l.fw[f].Apply(ctx, hostfw.DeleteTx(VMMChain, left))
		}
		errs = append(errs, err)
	}
	unlock()
	dir := filepath.Join(l.root, cgroupBase, instance)
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() && bottle.ValidInstance(e.Name()) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !isNotEmpty(err) {
					errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
				}
			}
		}
	}
	for _, d := range []string{dir, filepath.Join(l.root, cgroupBase)} {
		err := os.Remove(d)
		if isNotEmpty(err) {
			break
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("host layer: clean up instance %s: %w", instance, err)
	}
	return nil
}

// isNotEmpty reports whether err is a cgroup that still has children or
// processes, which rmdir refuses.
func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.ENOTEMPTY)
}
