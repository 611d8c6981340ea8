package dockerguest

import (
	"context"

	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
)

// runner runs one command; tests replace it with a fake iptables.
type runner = hostfw.Runner

// firewall reads and changes the host's filter table with iptables.
type firewall struct {
	hostfw.Firewall
}

func newFirewall(run runner) firewall {
	return firewall{Firewall: hostfw.NewFirewall(run, hostfw.IPv4)}
}

// install makes g's rules, and the chain and jumps they hang off, exactly
// what they should be, and says whether it changed anything. It reads
// before it writes, under the lock, so it is idempotent: rules in place
// cost one iptables-save and nothing else. wait, when set, is called once
// the table is read and before anything is written, so work the write
// depends on can run beside the read; its error writes nothing and is
// returned as it is.
func (f firewall) install(ctx context.Context, g guestRules, wait func() error) (bool, error) {
	defer hostfw.Lock()()
	rs, err := f.ReadFresh(ctx)
	if wait != nil {
		if werr := wait(); werr != nil {
			return false, werr
		}
	}
	if err != nil {
		return false, err
	}
	tx := installTx(rs, g)
	return len(tx) > 0, f.Apply(ctx, tx)
}

// RemoveInstanceRules deletes, in one transaction, the host firewall rules
// of every guest of instance, and returns them as iptables-save prints
// them. It is for cleaning up after an instance whose guests were removed
// behind its back; the driver itself removes a guest's rules with the guest.
func RemoveInstanceRules(ctx context.Context, instance string) ([]string, error) {
	return newFirewall(hostfw.ExecRunner{}).removeInstance(ctx, instance)
}

func (f firewall) removeInstance(ctx context.Context, instance string) ([]string, error) {
	defer hostfw.Lock()()
	rs, err := f.ReadFresh(ctx)
	if err != nil {
		return nil, err
	}
	rules := ofInstance(rs, instance)
	if err := f.Apply(ctx, hostfw.DeleteTx(Chain, rules)); err != nil {
		return nil, err
	}
	removed := make([]string, 0, len(rules))
	for _, r := range rules {
		removed = append(removed, "-A "+Chain+" "+hostfw.JoinArgs(r))
	}
	return removed, nil
}

// remove deletes every rule tagged with comment c. The shared chain and
// jumps stay: other guests, of this instance or another, use them.
func (f firewall) remove(ctx context.Context, c string) error {
	defer hostfw.Lock()()
	return f.removeTagged(ctx, c)
}

func (f firewall) removeTagged(ctx context.Context, c string) error {
	rs, err := f.ReadFresh(ctx)
	if err != nil {
		return err
	}
	return f.Apply(ctx, removeTx(rs, c))
}

// removeKnown deletes g's rules as Rules writes them, without reading the
// table first: tearing down N guests would otherwise read and parse a
// table of O(N) rules N times, on the cores Docker needs for the teardown.
// The deletes are one transaction, which fails whole when any of them is
// missing (drifted, or gone already); then every rule tagged for the bottle
// is read and deleted, as remove does. A tagged rule this driver did not
// write would stay, until the next install at its address (installTx
// replaces any rule naming it) or the instance's cleanup.
func (f firewall) removeKnown(ctx context.Context, g guestRules) error {
	defer hostfw.Lock()()
	if err := f.Apply(ctx, hostfw.DeleteTx(Chain, g.Rules())); err == nil {
		return nil
	}
	return f.removeTagged(ctx, g.Comment())
}
