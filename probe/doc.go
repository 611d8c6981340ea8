// Package probe tries to escape a live bottle from inside its guest and
// reports, probe by probe, whether the bottle held.
//
// The work is split in two. The runner (Execute, RunMain) runs inside the
// guest as the hidden `bottle-reconcile probe-run` subcommand of the
// binary (a dynamically linked one with its own loader and libraries, so a
// guest without the host's libc runs it too): it carries out a Plan of checks and prints one Observation per
// check as JSON, saying only what it saw. The host side (Run) observes the
// bottle, starts canaries (servers answering a random token) for the
// duration of the run, builds the Plan from the bottle's layout and spec
// (BuildPlan), copies the binary into the guest, runs it there and judges
// each observation against what the spec expects (Judge).
//
// The guest's word is not final: the canaries count every connection and
// datagram that reaches them, and Confirm fails each check the guest
// reports blocked whose canary saw more than the guest owns up to.
//
// A check judges by whether data came back (a canary token, a DNS answer,
// an HTTP status from the proxy), not by whether connect() succeeded, and
// reports how long it took, so a block by refusal can be told from a block
// by timeout.
package probe
