package smolvm

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

func TestUnreachableMachineRestarted(t *testing.T) { eachBackend(t, testUnreachableMachineRestarted) }

// A machine whose VMM lives on while its agent stopped answering is
// `unreachable` (CONTRACT.md): observed as stopped, so the next pass starts
// it, and smolvm's start kills the zombie VMM and boots a fresh one.
func testUnreachableMachineRestarted(t *testing.T, b *backend) {
	b.emulatorOnly(t, "__emu unreachable")
	ctx := context.Background()
	d := b.driver(t, Options{})
	w := b.want(t)
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	zombie := b.machinePID(t, w.Name)
	b.emu(t, "unreachable", w.Name)

	r := observeOne(t, d, w.Name)
	if r.State != bottle.StateStopped || r.Detail != "unreachable" || r.Broken != "" {
		t.Fatalf("observed %+v, want stopped (unreachable), not broken", r)
	}
	if err := d.Start(ctx, r); err != nil {
		t.Fatalf("Start of an unreachable machine: %v", err)
	}
	if got := observeOne(t, d, w.Name); got.State != bottle.StateRunning {
		t.Errorf("after Start: %s (%s), want running", got.State, got.Detail)
	}
	if fresh := b.machinePID(t, w.Name); fresh == zombie {
		t.Errorf("after Start the machine still runs on the zombie VMM %d", zombie)
	}
	if slices.Contains(b.processesOf(t), zombie) {
		t.Errorf("the zombie VMM %d was left running", zombie)
	}
}

// machinePID is the VMM pid `machine status --json` reports for name.
func (b *backend) machinePID(t *testing.T, name string) int {
	t.Helper()
	out, stderr, code := b.smolvm(t, "machine", "status", "--name", name, "--json")
	if code != 0 {
		t.Fatalf("machine status %s: exit %d: %s", name, code, stderr)
	}
	var m machine
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.PID == nil {
		t.Fatalf("machine status %s: pid missing (%v): %s", name, err, out)
	}
	return *m.PID
}
