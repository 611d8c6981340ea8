// Command smolvm-emulator stands in for the smolvm microVM CLI (v1.9.2) in
// development and tests, on machines where smolvm cannot run. Built as
// bin/smolvm and put first on PATH, it answers the `machine` (alias `vm`)
// subcommands create, start, stop, delete|rm, ls|list, status, exec and cp
// with the flags, output texts and exit codes of smolvm 1.9.2 (source
// smol-machines/smolvm a5df5001; see drivers/smolvm/CONTRACT.md). It runs no VM: a "running" machine is
// a sleeping child process, and exec runs the command ON THE HOST, without
// any isolation.
//
// State lives under $SMOLVM_DATA_DIR (or $HOME when unset), which the real
// CLI treats as HOME:
//
//	<data>/.local/share/smolvm/emu/state.json   machine records (flock + atomic rename)
//	<data>/.cache/smolvm/vms/<sha256(name)[:16]>/name   per-VM data dir, as in smolvm
//	<data>/emu/rootfs/<name>/                   the "guest filesystem" for cp and exec
//	<data>/emu/calls.jsonl                      one JSON line per invocation
//
// Environment knobs (tests only):
//
//	SMOLVM_EMU_VERSION=1.7.0          version to report; below 1.8.0 there is no --label
//	SMOLVM_EMU_FAIL_NEXT=create[,..]  the next such call fails with "Error: injected failure: ..."
//	                                  (exit 1). Entries are subcommands (create, start, stop,
//	                                  delete, ls, status, exec, cp), optionally OP*N for N
//	                                  failures and OP@TAG to re-arm with a fresh tag.
//	SMOLVM_EMU_HANG=create[,..]|all   that call sleeps until killed, before touching state
//	SMOLVM_EMU_CRASH_AFTER_CREATE=1   create stores the record, then exits 1 without output
//	SMOLVM_EMU_KILL=NAME[,..]         before the call, kill the machine's VMM as if it died
//	SMOLVM_EMU_RESOLVE=host=ip[,..]   fixed answers for --allow-host (else the host resolver)
//
// Hidden commands: `__emu kill NAME` kills a machine's VMM (its record left
// running, as after a crash); `__emu freeze NAME` makes it a fork base;
// `__emu unreachable NAME` makes its agent stop answering (unreachable.go);
// `__vmm NAME` is the VMM stand-in itself.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const defaultVersion = "1.9.2"

func (a *app) getenv(key string) string {
	v, _ := a.lookupEnv(key)
	return v
}

// app carries what one invocation needs; there is no package state.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	environ        []string // the whole environment, for calls.jsonl
	home           string   // SMOLVM_DATA_DIR, else HOME
	version        string
	store          store
}

// cliError is a smolvm::Error: printed as "Error: <msg>" with exit 1.
type cliError struct{ msg string }

func (e *cliError) Error() string { return e.msg }

func errorf(format string, a ...any) error { return &cliError{msg: fmt.Sprintf(format, a...)} }

// exitCode ends the process with a given code after its output was written
// (exec passes the guest command's code through).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv, environ: os.Environ()}
	os.Exit(a.run(os.Args[1:]))
}

func (a *app) run(args []string) int {
	a.version = defaultVersion
	a.home = a.getenv("SMOLVM_DATA_DIR")
	if a.home == "" {
		a.home = a.getenv("HOME")
	}
	if a.home == "" {
		fmt.Fprintln(a.stderr, "Error: neither SMOLVM_DATA_DIR nor HOME is set")
		return 1
	}
	a.store = newStore(a.home)
	a.lookupEnv = withFaultFile(a.lookupEnv, a.home)
	if v := a.getenv("SMOLVM_EMU_VERSION"); v != "" {
		a.version = v
	}

	if len(args) > 0 && args[0] == "__vmm" {
		return a.vmmMain(args[1:])
	}
	if len(args) > 0 && args[0] == "__emu" {
		return a.report(a.emuCmd(args[1:]))
	}
	a.logCall(args)
	return a.report(a.dispatch(args))
}

// report prints err the way smolvm's main does and returns the exit code.
func (a *app) report(err error) int {
	var ce *clapError
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &ce):
		fmt.Fprint(a.stderr, ce.text())
		return 2
	default:
		fmt.Fprintf(a.stderr, "Error: %s\n", err)
		return 1
	}
}

const topUsage = "smolvm [OPTIONS] <COMMAND>"

func (a *app) dispatch(args []string) error {
	if len(args) == 0 {
		// arg_required_else_help: clap prints help to stderr and exits 2.
		return &clapError{msg: "a subcommand is required", usage: topUsage}
	}
	switch args[0] {
	case "--version", "-V":
		if err := a.hang("version"); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "smolvm %s\n", a.version)
		return nil
	case "--help", "-h", "help":
		fmt.Fprintf(a.stdout, "smolvm emulator (stand-in for smolvm %s)\n\nUsage: %s\n\nCommands:\n  machine  Manage machines (alias: vm)\n", a.version, topUsage)
		return nil
	case "machine", "vm":
		return a.machine(args[1:])
	case "pack", "serve", "config", "container", "image", "run":
		// Real subcommands this emulator does not provide: fail loudly.
		return errorf("smolvm emulator: '%s' is not emulated", args[0])
	}
	if strings.HasPrefix(args[0], "-") {
		return &clapError{msg: fmt.Sprintf("unexpected argument '%s' found", args[0]), usage: topUsage}
	}
	return &clapError{msg: fmt.Sprintf("unrecognized subcommand '%s'", args[0]), usage: topUsage}
}

const machineUsage = "smolvm machine <COMMAND>"

// machine dispatches `smolvm machine <sub>`.
func (a *app) machine(args []string) error {
	if len(args) == 0 {
		return &clapError{msg: "a subcommand is required", usage: machineUsage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "rm":
		sub = "delete"
	case "list":
		sub = "ls"
	}
	h, ok := a.machineCommands()[sub]
	if !ok {
		switch sub {
		case "run", "fork", "fork-release", "egress-events", "update", "images", "prune",
			"shell", "sh", "monitor", "data-dir", "resize", "network-test":
			return errorf("smolvm emulator: 'machine %s' is not emulated", sub)
		}
		if strings.HasPrefix(sub, "-") {
			if sub == "-h" || sub == "--help" {
				fmt.Fprintf(a.stdout, "Usage: %s\n", machineUsage)
				return nil
			}
			return &clapError{msg: fmt.Sprintf("unexpected argument '%s' found", sub), usage: machineUsage}
		}
		return &clapError{msg: fmt.Sprintf("unrecognized subcommand '%s'", sub), usage: machineUsage}
	}
	for _, x := range rest {
		if x == "--" {
			break
		}
		if x == "-h" || x == "--help" {
			fmt.Fprintf(a.stdout, "Usage: %s\n", h.spec.usage)
			return nil
		}
	}
	if err := a.hang(sub); err != nil {
		return err
	}
	if err := a.killFromEnv(); err != nil {
		return err
	}
	p, err := h.spec.parse(rest)
	if err != nil {
		return err
	}
	if err := a.failNext(sub); err != nil {
		return err
	}
	return h.run(p)
}

type machineCmd struct {
	spec cmdSpec
	run  func(parsedArgs) error
}

func (a *app) machineCommands() map[string]machineCmd {
	nameFlag := flagSpec{long: "name", short: 'n', value: "NAME"}
	return map[string]machineCmd{
		"create": {a.createSpec(), a.create},
		"start": {cmdSpec{
			usage: "smolvm machine start [OPTIONS]",
			flags: []flagSpec{nameFlag, {long: "forkable"}, {long: "fork-pool-size", value: "N"},
				{long: "cuda-vram-limit-mib", value: "MIB"}, {long: "proxy", value: "URL"}, {long: "no-proxy"}},
		}, a.start},
		"stop": {cmdSpec{
			usage: "smolvm machine stop [OPTIONS]",
			flags: []flagSpec{nameFlag},
		}, a.stop},
		"delete": {cmdSpec{
			usage:    "smolvm machine delete [OPTIONS] --name <NAME>",
			flags:    []flagSpec{nameFlag, {long: "force", short: 'f'}, {long: "cascade"}},
			required: []string{"name"},
		}, a.delete},
		"ls": {cmdSpec{
			usage: "smolvm machine ls [OPTIONS]",
			flags: []flagSpec{{long: "verbose", short: 'v'}, {long: "json"}},
		}, a.ls},
		"status": {cmdSpec{
			usage: "smolvm machine status [OPTIONS]",
			flags: []flagSpec{nameFlag, {long: "json"}},
		}, a.status},
		"exec": {cmdSpec{
			usage: "smolvm machine exec [OPTIONS] <COMMAND>...",
			flags: []flagSpec{{long: "name", value: "NAME"}, {long: "env", short: 'e', value: "KEY=VALUE", multi: true},
				{long: "workdir", short: 'w', value: "DIR"}, {long: "secret-env", value: "GUEST=HOSTVAR", multi: true},
				{long: "timeout", value: "DURATION"}, {long: "interactive", short: 'i'}, {long: "tty", short: 't'},
				{long: "stream"}, {long: "detach", short: 'd'}},
			trailing:       true,
			trailingVarArg: true,
		}, a.exec},
		"cp": {cmdSpec{
			usage:       "smolvm machine cp [OPTIONS] <SRC> <DST>",
			flags:       []flagSpec{{long: "mode", value: "OCTAL"}, {long: "uid", value: "UID"}, {long: "gid", value: "GID"}},
			positionals: []string{"SRC", "DST"},
		}, a.cp},
	}
}

// nameOrDefault is the --name value; start/stop/status/exec fall back to
// "default".
func nameOrDefault(p parsedArgs) string {
	if n, ok := p.one("name"); ok {
		return n
	}
	return "default"
}
