package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// start implements `machine start`: idempotent, and with no --name it starts
// (creating it first if needed) the machine called "default".
func (a *app) start(p parsedArgs) error {
	name := nameOrDefault(p)
	var pid int
	already := false
	err := a.store.withLock(true, func(st *stateFile) error {
		r, ok := st.Machines[name]
		if !ok && !p.has("name") {
			rec := newRecord(name)
			r = &rec
			if err := a.makeDataDir(name); err != nil {
				return err
			}
			st.Machines[name] = r
			ok = true
		}
		if !ok {
			return errorf("vm not found: %s", name)
		}
		switch a.observedState(r) {
		case "running":
			pid, already = *r.PID, true
			return nil
		case "unreachable":
			// vm_common.rs 1306-1311: kill the zombie, then a fresh start.
			if err := a.recoverUnreachable(r, true); err != nil {
				return err
			}
		case "frozen":
			// vm_common.rs 1312-1327, for a fork base without clones (the
			// emulator has no forks).
			return errorf("agent operation failed: start: '%s' is frozen because it retains a reusable fork checkpoint; stop it before restarting, or fork it again", name)
		}
		fmt.Fprintf(a.stderr, "Starting machine '%s'...\n", name)
		if err := a.firstPull(r, p); err != nil {
			return err
		}
		if err := os.MkdirAll(a.rootfsDir(name), 0o755); err != nil {
			return fmt.Errorf("create rootfs dir: %w", err)
		}
		var err error
		if pid, err = a.spawnVMM(name); err != nil {
			return err
		}
		r.PID, r.State, r.AgentDown = &pid, "running", false
		// --init runs on the first start only; the emulator records that it
		// "ran" without running it.
		r.InitCompleted = true
		return nil
	})
	if err != nil {
		return err
	}
	if already {
		fmt.Fprintf(a.stdout, "Machine '%s' already running (PID: %d)\n", name, pid)
		return nil
	}
	fmt.Fprintf(a.stdout, "Machine '%s' running (PID: %d)\n", name, pid)
	return nil
}

// stop implements `machine stop`: idempotent (vm_common.rs ~1940-2030).
func (a *app) stop(p parsedArgs) error {
	name := nameOrDefault(p)
	var state string
	stopped, recovered := false, false
	err := a.store.withLock(true, func(st *stateFile) error {
		r, ok := st.Machines[name]
		if !ok {
			return errorf("vm not found: %s", name)
		}
		if a.observedState(r) == "unreachable" {
			// vm_common.rs 1951-1966: the zombie is killed with a notice.
			recovered = true
			return a.recoverUnreachable(r, true)
		}
		var err error
		state, stopped, err = a.stopLocked(r)
		return err
	})
	if err != nil {
		return err
	}
	if recovered {
		fmt.Fprintf(a.stdout, "Stopped machine: %s\n", name)
		return nil
	}
	if !stopped {
		// Prints the state it found, e.g. created for a never-started one
		// (vm_common.rs 2006).
		fmt.Fprintf(a.stdout, "Machine '%s' is not running (state: %s)\n", name, state)
		return nil
	}
	fmt.Fprintf(a.stdout, "Stopped machine: %s\n", name)
	return nil
}

// stopLocked kills r's VMM if it runs (or is frozen) and reports the state
// it found and whether it stopped anything. A clean stop clears the PID
// (vm_common.rs 2026-2030); a crashed machine's stale PID is kept.
func (a *app) stopLocked(r *Record) (string, bool, error) {
	state := a.observedState(r)
	if state == "unreachable" {
		// Only delete gets here: it reaps a zombie silently
		// (vm_common.rs 2329-2335).
		return state, true, a.recoverUnreachable(r, false)
	}
	if state != "running" && state != "frozen" {
		if r.State == "running" {
			r.State = "stopped"
		}
		return state, false, nil
	}
	fmt.Fprintf(a.stdout, "Stopping machine '%s'...\n", r.Name)
	if err := terminate(*r.PID, r.Name, a.home); err != nil {
		return state, false, err
	}
	r.State, r.PID = "stopped", nil
	return state, true, nil
}

// delete implements `machine delete|rm`. Without -f it stops the machine,
// then asks on stdin and deletes only on y/yes.
func (a *app) delete(p parsedArgs) error {
	name, _ := p.one("name")
	force := p.has("force")
	err := a.store.withLock(true, func(st *stateFile) error {
		r, ok := st.Machines[name]
		if !ok {
			return errorf("vm not found: %s", name)
		}
		if _, _, err := a.stopLocked(r); err != nil {
			return err
		}
		if force {
			return a.removeLocked(st, name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if force {
		fmt.Fprintf(a.stdout, "Deleted machine: %s\n", name)
		return nil
	}

	// The prompt goes to stderr (vm_common.rs 2352) and is read outside the
	// lock: a caller that never closes stdin hangs here, as with the real CLI.
	fmt.Fprintf(a.stderr, "Delete machine '%s'? [y/N] ", name)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
		fmt.Fprintln(a.stdout, "Cancelled")
		return nil
	}
	err = a.store.withLock(true, func(st *stateFile) error {
		r, ok := st.Machines[name]
		if !ok {
			return errorf("vm not found: %s", name)
		}
		if _, _, err := a.stopLocked(r); err != nil {
			return err
		}
		return a.removeLocked(st, name)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Deleted machine: %s\n", name)
	return nil
}

// removeLocked drops the record and the machine's directories; the caller
// reports success once the state is saved.
func (a *app) removeLocked(st *stateFile, name string) error {
	fmt.Fprintf(a.stdout, "Cleaning up data directory for vm: %s\n", name)
	for _, dir := range []string{a.vmDataDir(name), a.rootfsDir(name)} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	delete(st.Machines, name)
	return nil
}
