package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The smolvm faults of the chaos suite that hang or wedge smolvm itself:
// calls that never answer (SMOLVM_EMU_HANG) and machines whose agent stops
// answering (`__emu unreachable`).

// Short smolvm timeouts for the passes that meet a hang, so a fault costs
// seconds, not the default 30 s and 2 min.
const (
	hangCallTimeout   = 3 * time.Second
	hangCreateTimeout = 5 * time.Second
	// hangSlack is how much longer than its timeout a pass that meets a hang
	// may take: the rest of the pass (Docker, the image export) on a loaded
	// machine. A pass that waits for the hung call instead runs until the
	// harness kills it, minutes later.
	hangSlack = 30 * time.Second
)

func (c *chaos) smolvmHangFaults() []fault {
	return []fault{
		{"smolvm ls hangs", func(c *chaos) string {
			// The spec of one smolvm bottle is removed too: a pass that
			// cannot list machines must not take that for "no machine".
			b := c.pick("s")
			c.e.remove(b)
			before, machines, nCalls := c.e.ids(), c.machinePIDs(), len(c.e.calls())
			r, took := c.hungPass("SMOLVM_EMU_HANG=ls", "machine ls --json", hangCallTimeout)
			c.write(b)
			var bad []string
			if m := mutations(c.e.calls()[nCalls:]); len(m) > 0 {
				bad = append(bad, fmt.Sprintf("smolvm called to change machines while ls hung: %v", m))
			}
			if after := c.e.ids(); !maps.Equal(before, after) {
				bad = append(bad, fmt.Sprintf("Docker objects changed while ls hung:\nbefore %v\nafter  %v", before, after))
			}
			if after := c.machinePIDs(); !maps.Equal(machines, after) {
				bad = append(bad, fmt.Sprintf("machines changed while ls hung: before %v, after %v", machines, after))
			}
			if !strings.Contains(r.stderr, "bottle "+c.e.name(b)+": unobservable") {
				bad = append(bad, "the pass does not say the removed spec's bottle is held as unobservable")
			}
			c.report("smolvm ls hangs", bad)
			return fmt.Sprintf("spec of %s removed, a pass with machine ls hanging exited %d after %s, spec restored", b, r.code, took.Round(100*time.Millisecond))
		}},
		{"smolvm create hangs", func(c *chaos) string {
			return c.hungReplace("create")
		}},
		{"smolvm start hangs", func(c *chaos) string {
			return c.hungReplace("start")
		}},
		{"machine unreachable", func(c *chaos) string {
			b := c.pick("s")
			if _, err := c.e.smolvm("__emu", "unreachable", guestName(c.e.name(b))); err != nil {
				c.t.Errorf("make machine unreachable: %v", err)
			}
			return "the agent of " + b + "'s machine stopped answering (its VMM lives on)"
		}},
		{"machine dead after going unreachable", func(c *chaos) string {
			// smolvm persists unreachable once an exec finds the agent
			// silent; the VMM then dies and the record still says
			// unreachable (a dead VMM under a record left running is
			// "VMM crashed").
			b := c.pick("s")
			m := guestName(c.e.name(b))
			if _, err := c.e.smolvm("__emu", "unreachable", m); err != nil {
				c.t.Errorf("make machine unreachable: %v", err)
			}
			if _, err := c.e.smolvm("machine", "exec", "--name", m, "--", "true"); err == nil {
				c.t.Errorf("exec on an unreachable machine succeeded")
			}
			if _, err := c.e.smolvm("__emu", "kill", m); err != nil {
				c.t.Errorf("kill VMM: %v", err)
			}
			if st := c.e.machines()[m].State; st != "unreachable" {
				c.t.Errorf("machine %s after exec and VMM kill: %s, want unreachable", m, st)
			}
			return "the agent of " + b + "'s machine stopped answering, an exec marked it, then its VMM died"
		}},
	}
}

// hungReplace edits a smolvm bottle's env, so its machine is replaced, and
// runs one pass with machine op (create or start) hanging.
func (c *chaos) hungReplace(op string) string {
	b := c.pick("s")
	c.edit(b)
	r, took := c.hungPass("SMOLVM_EMU_HANG="+op, "machine "+op, hangCreateTimeout)
	return fmt.Sprintf("env of %s edited, a pass with machine %s hanging exited %d after %s", b, op, r.code, took.Round(100*time.Millisecond))
}

// hungPass runs one pass, with short smolvm timeouts, while the emulator
// setting makes call hang, then clears it. The pass must end within the
// timeout plus slack, exit non-zero naming the call and the timeout, and
// leave no smolvm process behind.
func (c *chaos) hungPass(setting, call string, timeout time.Duration) (result, time.Duration) {
	c.e.emuFaults([]string{setting})
	start := time.Now()
	r := c.e.runNoFatal("", "--once", "--smolvm-timeout", hangCallTimeout.String(),
		"--smolvm-create-timeout", hangCreateTimeout.String(), c.e.specs)
	took := time.Since(start)
	c.e.emuFaults(nil)
	var bad []string
	if took > timeout+hangSlack {
		bad = append(bad, fmt.Sprintf("the pass took %s, more than the %s timeout plus %s", took, timeout, hangSlack))
	}
	if r.code == 0 {
		bad = append(bad, "the pass exited 0")
	}
	if want := fmt.Sprintf("no answer within %s", timeout); !strings.Contains(r.stderr, call) || !strings.Contains(r.stderr, want) {
		bad = append(bad, fmt.Sprintf("the pass's output does not name %q and %q:\n%s", call, want, r))
	}
	bad = append(bad, c.smolvmLeftovers()...)
	c.report(setting, bad)
	return r, took
}

// report fails the test with what a fault's own checks found.
func (c *chaos) report(what string, bad []string) {
	if len(bad) > 0 {
		c.t.Errorf("%s: %s", what, strings.Join(bad, "; "))
	}
}

// machinePIDs is this instance's machines: name → state and VMM pid.
func (c *chaos) machinePIDs() map[string]string {
	out := map[string]string{}
	for n, m := range c.e.machines() {
		pid := "-"
		if m.PID != nil {
			pid = fmt.Sprint(*m.PID)
		}
		out[n] = m.State + " " + pid
	}
	return out
}

// smolvmLeftovers lists the emulator processes still running but the VMM
// stand-ins (`smolvm __vmm NAME DATADIR`) of listed machines: a smolvm call
// the reconciler gave up on must have been killed, and a VMM replaced (a
// zombie's) must be gone. The watcher's own calls in flight show up too;
// the watch suite retries its invariants until they settle.
func (c *chaos) smolvmLeftovers() []string {
	var bad []string
	vmms := map[string]bool{}
	for _, m := range c.e.machines() {
		if m.PID != nil {
			vmms[fmt.Sprint(*m.PID)] = true
		}
	}
	bin := filepath.Join(binDir, "smolvm")
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return []string{"list processes: " + err.Error()}
	}
	for _, p := range procs {
		pid := p.Name()
		// By executable, not command line: smolvm looked up in PATH runs
		// with argv[0] "smolvm".
		if exe, err := os.Readlink("/proc/" + pid + "/exe"); err != nil || exe != bin {
			continue
		}
		b, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			continue // gone meanwhile
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) == 4 && argv[1] == "__vmm" && (argv[3] != c.e.data || vmms[pid]) {
			continue
		}
		bad = append(bad, fmt.Sprintf("a smolvm process left running: pid %s: %s", pid, strings.Join(argv, " ")))
	}
	return bad
}
