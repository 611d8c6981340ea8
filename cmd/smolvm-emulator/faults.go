package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault injection and call recording. See the package comment and README.md
// for the environment variables.

// callRecord is one line of <data>/emu/calls.jsonl.
type callRecord struct {
	Time string   `json:"time"`
	PID  int      `json:"pid"`
	Args []string `json:"args"` // argv without argv[0]
	// Env is the whole environment this invocation saw, sorted, so tests
	// can assert what a caller handed smolvm (and what it did not).
	Env []string `json:"env"`
}

// logCall appends the invocation to calls.jsonl. A single O_APPEND write
// keeps lines whole under concurrent callers. Failing to log must not change
// the CLI's behaviour, so errors are ignored.
func (a *app) logCall(args []string) {
	dir := filepath.Join(a.home, "emu")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	if args == nil {
		args = []string{}
	}
	env := slices.Sorted(slices.Values(a.environ))
	if env == nil {
		env = []string{}
	}
	b, err := json.Marshal(callRecord{Time: time.Now().UTC().Format(time.RFC3339Nano), PID: os.Getpid(), Args: args, Env: env})
	if err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, "calls.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}

// envList splits a comma-separated environment variable.
func (a *app) envList(key string) []string {
	var out []string
	for _, s := range strings.Split(a.getenv(key), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// hang blocks forever when SMOLVM_EMU_HANG names op (or "all"). It runs
// before any lock is taken, so a hung call never blocks other calls.
func (a *app) hang(op string) error {
	for _, h := range a.envList("SMOLVM_EMU_HANG") {
		if h == op || h == "all" {
			for {
				time.Sleep(time.Hour)
			}
		}
	}
	return nil
}

// faultEntry is one SMOLVM_EMU_FAIL_NEXT entry: OP[*N][@TAG].
type faultEntry struct {
	key   string // the entry text; consumption is counted per key
	op    string
	times int
}

func parseFault(s string) faultEntry {
	e := faultEntry{key: s, times: 1}
	body, _, _ := strings.Cut(s, "@")
	op, n, ok := strings.Cut(body, "*")
	e.op = op
	if ok {
		if v, err := strconv.Atoi(n); err == nil && v > 0 {
			e.times = v
		}
	}
	return e
}

// failNext consumes one matching SMOLVM_EMU_FAIL_NEXT fault, if any is left,
// and returns the injected error. Consumption is recorded in the state file
// so "next" holds across processes.
func (a *app) failNext(op string) error {
	var matching []faultEntry
	for _, s := range a.envList("SMOLVM_EMU_FAIL_NEXT") {
		if e := parseFault(s); e.op == op {
			matching = append(matching, e)
		}
	}
	if len(matching) == 0 {
		return nil
	}
	fire := false
	err := a.store.withLock(true, func(st *stateFile) error {
		for _, e := range matching {
			if st.Faults[e.key] < e.times {
				st.Faults[e.key]++
				fire = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if fire {
		return errorf("injected failure: machine %s (SMOLVM_EMU_FAIL_NEXT)", op)
	}
	return nil
}

// killFromEnv kills the VMM of every machine named in SMOLVM_EMU_KILL, so the
// call that follows sees it as crashed. Unknown names are skipped: the
// variable may stay set across a delete.
func (a *app) killFromEnv() error {
	for _, name := range a.envList("SMOLVM_EMU_KILL") {
		if _, err := a.killVMM(name); err != nil {
			return err
		}
	}
	return nil
}

// emuCmd runs the hidden `__emu` commands: `kill NAME` (a VMM crash),
// `freeze NAME` (a running machine becomes a fork base, state frozen, which
// the emulator has no other way to reach) and `unreachable NAME` (its agent
// stops answering while its VMM lives on: unreachable.go).
func (a *app) emuCmd(args []string) error {
	if len(args) == 2 && args[0] == "kill" {
		found, err := a.killVMM(args[1])
		if err == nil && !found {
			return errorf("vm not found: %s", args[1])
		}
		return err
	}
	if len(args) == 2 && args[0] == "freeze" {
		return a.store.withLock(true, func(st *stateFile) error {
			r, ok := st.Machines[args[1]]
			if !ok {
				return errorf("vm not found: %s", args[1])
			}
			if a.observedState(r) != "running" {
				return errorf("machine '%s' is not running", args[1])
			}
			r.State = "frozen"
			return nil
		})
	}
	if len(args) == 2 && args[0] == "unreachable" {
		return a.emuUnreachable(args[1])
	}
	return fmt.Errorf("usage: smolvm __emu kill|freeze|unreachable NAME")
}

// killVMM kills a machine's VMM without touching its record, which is what a
// crash looks like: the record still says running but the PID is dead. It
// reports whether the machine exists.
func (a *app) killVMM(name string) (bool, error) {
	var pid int
	found := false
	err := a.store.withLock(false, func(st *stateFile) error {
		r, ok := st.Machines[name]
		found = ok
		if ok && r.PID != nil && vmmAlive(*r.PID, name, a.home) {
			pid = *r.PID
		}
		return nil
	})
	if err != nil || pid == 0 {
		return found, err
	}
	return true, terminate(pid, name, a.home)
}
