package dockerguest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// runner runs one command; tests replace it with a fake iptables.
type runner interface {
	Run(ctx context.Context, stdin string, name string, args ...string) ([]byte, error)
}

// execRunner runs commands on the host.
type execRunner struct{}

func (execRunner) Run(ctx context.Context, stdin, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &CmdError{Args: append([]string{name}, args...), Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// CmdError is a host command that failed.
type CmdError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *CmdError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *CmdError) Unwrap() error { return e.Err }

// hostFirewallMu serialises this process's changes to the host firewall:
// the firewall is one per host, so the lock is one per process, shared by
// every Driver. Other processes are kept out by iptables' own lock (-w) and
// by iptables-restore applying a whole transaction or nothing.
var hostFirewallMu sync.Mutex

// firewall reads and changes the host's filter table with iptables.
type firewall struct {
	run runner
}

// read returns the filter table as it is now: one iptables-save.
func (f firewall) read(ctx context.Context) (ruleset, error) {
	out, err := f.run.Run(ctx, "", "iptables-save", "-t", "filter")
	if err != nil {
		return ruleset{}, fmt.Errorf("read host firewall: %w", err)
	}
	rs, err := parseSave(string(out))
	if err != nil {
		return ruleset{}, fmt.Errorf("read host firewall: %w", err)
	}
	return rs, nil
}

// apply runs tx as one iptables-restore transaction, keeping every rule it
// does not name.
func (f firewall) apply(ctx context.Context, tx []string) error {
	if len(tx) == 0 {
		return nil
	}
	if _, err := f.run.Run(ctx, restoreInput(tx), "iptables-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("change host firewall: %w", err)
	}
	return nil
}

// install makes g's rules, and the chain and jumps they hang off, exactly
// what they should be, and says whether it changed anything. It reads
// before it writes, under the lock, so it is idempotent: rules in place
// cost one iptables-save and nothing else.
func (f firewall) install(ctx context.Context, g guestRules) (bool, error) {
	hostFirewallMu.Lock()
	defer hostFirewallMu.Unlock()
	rs, err := f.read(ctx)
	if err != nil {
		return false, err
	}
	tx := rs.installTx(g)
	return len(tx) > 0, f.apply(ctx, tx)
}

// RemoveInstanceRules deletes, in one transaction, the host firewall rules
// of every guest of instance, and returns them as iptables-save prints
// them. It is for cleaning up after an instance whose guests were removed
// behind its back; the driver itself removes a guest's rules with the guest.
func RemoveInstanceRules(ctx context.Context, instance string) ([]string, error) {
	return firewall{run: execRunner{}}.removeInstance(ctx, instance)
}

func (f firewall) removeInstance(ctx context.Context, instance string) ([]string, error) {
	hostFirewallMu.Lock()
	defer hostFirewallMu.Unlock()
	rs, err := f.read(ctx)
	if err != nil {
		return nil, err
	}
	rules := rs.ofInstance(instance)
	if err := f.apply(ctx, deleteTx(rules)); err != nil {
		return nil, err
	}
	removed := make([]string, 0, len(rules))
	for _, r := range rules {
		removed = append(removed, "-A "+Chain+" "+joinArgs(r))
	}
	return removed, nil
}

// remove deletes every rule tagged with comment c. The shared chain and
// jumps stay: other guests, of this instance or another, use them.
func (f firewall) remove(ctx context.Context, c string) error {
	hostFirewallMu.Lock()
	defer hostFirewallMu.Unlock()
	rs, err := f.read(ctx)
	if err != nil {
		return err
	}
	return f.apply(ctx, rs.removeTx(c))
}
