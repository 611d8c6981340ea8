package main

import "fmt"

// An unreachable machine is smolvm's zombie VMM (src/agent/state_probe.rs):
// the record says running and the VMM pid is alive, but the agent inside does
// not answer a vsock ping. The emulator has no agent; `__emu unreachable NAME`
// sets Record.AgentDown, which stands for "the agent of the VMM now running
// stopped answering", and a fresh VMM clears it.
//
// What smolvm 1.9.2 does with one, and the emulator with it:
//   - ls/status report `unreachable` (resolve_state);
//   - exec and cp fail with the connect error of a stopped machine, and the
//     record is persisted as unreachable (mark_unreachable_if_zombie,
//     vm_common.rs 160-186); from then on ls reports unreachable without
//     probing, whether the VMM still lives or not;
//   - start and stop kill the zombie VMM, print a notice and clear the record
//     (cli_recover_if_unreachable, vm_common.rs 132-153); start then boots a
//     fresh VMM (vm_common.rs 1306-1311);
//   - delete kills it silently (recover_unreachable_machine, vm_common.rs
//     2329-2335).

// emuUnreachable implements `__emu unreachable NAME`: the running machine's
// agent stops answering.
func (a *app) emuUnreachable(name string) error {
	return a.store.withLock(true, func(st *stateFile) error {
		r, ok := st.Machines[name]
		if !ok {
			return errorf("vm not found: %s", name)
		}
		if a.observedState(r) != "running" {
			return errorf("machine '%s' is not running", name)
		}
		r.AgentDown = true
		return nil
	})
}

// recoverUnreachable kills r's zombie VMM if it still lives and leaves r
// stopped with no pid (recover_unreachable_machine_in_db). With notice it
// prints the CLI's line, naming the pid the record held.
func (a *app) recoverUnreachable(r *Record, notice bool) error {
	pid := 0
	if r.PID != nil {
		pid = *r.PID
		if vmmAlive(pid, r.Name, a.home) {
			if err := terminate(pid, r.Name, a.home); err != nil {
				return err
			}
		}
	}
	r.State, r.PID, r.AgentDown = "stopped", nil, false
	if notice {
		fmt.Fprintf(a.stdout, "Machine '%s' is unreachable (PID %d alive but agent unresponsive); cleaning up.\n", r.Name, pid)
	}
	return nil
}

// markUnreachable persists a zombie's state after a failed agent connect,
// best effort like smolvm's: only a running record with a live VMM changes.
func (a *app) markUnreachable(name string) {
	_ = a.store.withLock(true, func(st *stateFile) error {
		if r, ok := st.Machines[name]; ok && r.State == "running" && r.PID != nil && vmmAlive(*r.PID, name, a.home) {
			r.State = "unreachable"
		}
		return nil
	})
}
