package hostfw

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// Runner runs one command; tests replace it with a fake iptables
// (hostfwtest.IPTables).
type Runner interface {
	Run(ctx context.Context, stdin string, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands on the host.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, stdin, name string, args ...string) ([]byte, error) {
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

// Family is the address family a Firewall works on.
type Family string

// The families, named by their iptables command.
const (
	IPv4 Family = "iptables"
	IPv6 Family = "ip6tables"
)

// mu serialises this process's changes to the host firewall: the firewall
// is one per host, so the lock is one per process, shared by every driver.
// Other processes are kept out by iptables' own lock (-w) and by
// iptables-restore applying a whole transaction or nothing.
var mu sync.Mutex

// Lock takes the process's host firewall lock; a driver holds it from the
// read it decides on to the change it applies.
func Lock() (unlock func()) {
	mu.Lock()
	return mu.Unlock
}

// GenReader is a Runner that can also say the generation of the
// nf_tables ruleset its commands read and change (see RulesetGen).
type GenReader interface {
	Gen(ctx context.Context) (uint32, error)
}

// Gen implements GenReader for the host's ruleset.
func (ExecRunner) Gen(ctx context.Context) (uint32, error) { return RulesetGen(ctx) }

// Firewall reads and changes one family's filter table.
type Firewall struct {
	Run    Runner
	Family Family
	// last is the last table read, and the generation it stands for;
	// nil reads with iptables-save every time.
	last *lastRead
}

// NewFirewall returns a Firewall that reads with iptables-save only when
// the ruleset changed since its last read: when Run is a GenReader and
// iptables is iptables-nft, a read while the ruleset's generation stands
// returns the last table read, which is then exactly the table as it is.
// An iptables-save of 2500 rules costs 50-130 ms on a busy host; asking
// the kernel for the generation costs one netlink round trip.
func NewFirewall(run Runner, fam Family) Firewall {
	return Firewall{Run: run, Family: fam, last: &lastRead{}}
}

type lastRead struct {
	mu  sync.Mutex
	ok  bool
	gen uint32
	t   Table
}

func (l *lastRead) at(gen uint32) (Table, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.t, l.ok && l.gen == gen
}

func (l *lastRead) set(gen uint32, t Table) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ok, l.gen, l.t = true, gen, t
}

func (f Firewall) family() Family {
	if f.Family == "" {
		return IPv4
	}
	return f.Family
}

// Read returns the filter table as it is now: one iptables-save. Within a
// pass (a bottle.WithShared context) every driver gets the same read.
func (f Firewall) Read(ctx context.Context) (Table, error) {
	return bottle.Shared(ctx, "hostfw/"+string(f.family()), f.read)
}

// ReadFresh reads the table without sharing, for a decision to change it.
func (f Firewall) ReadFresh(ctx context.Context) (Table, error) { return f.read(ctx) }

// read returns the table as it is now. A table read is kept under the
// generation read just before it, and handed out while the generation
// stays there. The generation only grows, so a table that a change
// overlapped is never handed out: by then the generation has moved past
// the one it is kept under, for good. Callers only read a Table, so the
// one kept is handed out as it is.
func (f Firewall) read(ctx context.Context) (Table, error) {
	gr, ok := f.Run.(GenReader)
	if f.last == nil || !ok {
		return f.save(ctx)
	}
	gen, gerr := gr.Gen(ctx)
	if gerr == nil {
		if t, ok := f.last.at(gen); ok {
			return t, nil
		}
	}
	t, err := f.save(ctx)
	if err == nil && gerr == nil && t.NFTables {
		f.last.set(gen, t)
	}
	return t, err
}

func (f Firewall) save(ctx context.Context) (Table, error) {
	out, err := f.Run.Run(ctx, "", string(f.family())+"-save", "-t", "filter")
	if err != nil {
		return Table{}, fmt.Errorf("read host firewall: %w", err)
	}
	t, err := ParseSave(string(out))
	if err != nil {
		return Table{}, fmt.Errorf("read host firewall: %w", err)
	}
	return t, nil
}

// Apply runs tx as one iptables-restore transaction, keeping every rule it
// does not name. No lines is no call.
func (f Firewall) Apply(ctx context.Context, tx []string) error {
	if len(tx) == 0 {
		return nil
	}
	if _, err := f.Run.Run(ctx, RestoreInput(tx), string(f.family())+"-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("change host firewall: %w", err)
	}
	return nil
}
