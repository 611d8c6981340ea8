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
		if a.observedState(r) == "running" {
			pid, already = *r.PID, true
			return nil
		}
		fmt.Fprintf(a.stderr, "Starting machine '%s'...\n", name)
		if err := os.MkdirAll(a.rootfsDir(name), 0o755); err != nil {
			return fmt.Errorf("create rootfs dir: %w", err)
		}
		var err error
		if pid, err = a.spawnVMM(name); err != nil {
			return err
		}
		r.PID, r.State = &pid, "running"
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

// stop implements `machine stop`: idempotent.
func (a *app) stop(p parsedArgs) error {
	name := nameOrDefault(p)
	stopped := false
	err := a.store.withLock(true, func(st *stateFile) error {
		r, ok := st.Machines[name]
		if !ok {
			return errorf("vm not found: %s", name)
		}
		var err error
		stopped, err = a.stopLocked(r)
		return err
	})
	if err != nil {
		return err
	}
	if !stopped {
		// The reference gives this text for both "stopped" and "never
		// started".
		fmt.Fprintf(a.stdout, "Machine '%s' is not running (state: stopped)\n", name)
		return nil
	}
	// Not from the reference: the wording of a successful stop.
	fmt.Fprintf(a.stdout, "Machine '%s' stopped\n", name)
	return nil
}

// stopLocked kills r's VMM if it runs and reports whether it did. A record
// that says running but whose VMM died is marked stopped. The PID is kept,
// stale, as in the real record.
func (a *app) stopLocked(r *Record) (bool, error) {
	if a.observedState(r) != "running" {
		if r.State == "running" {
			r.State = "stopped"
		}
		return false, nil
	}
	// Progress goes to stderr; the exact wording is elided in the reference.
	fmt.Fprintf(a.stderr, "Stopping machine '%s'...\n", r.Name)
	if err := terminate(*r.PID, r.Name, a.home); err != nil {
		return false, err
	}
	r.State = "stopped"
	return true, nil
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
		if _, err := a.stopLocked(r); err != nil {
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

	// The prompt is read outside the lock: a caller that never closes stdin
	// hangs here, as with the real CLI.
	fmt.Fprintf(a.stdout, "Delete machine '%s'? [y/N] ", name)
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
		if _, err := a.stopLocked(r); err != nil {
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
	fmt.Fprintln(a.stderr, "Cleaning up data directory...")
	for _, dir := range []string{a.vmDataDir(name), a.rootfsDir(name)} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	delete(st.Machines, name)
	return nil
}
