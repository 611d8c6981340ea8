package smolvm

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

func ourLabels(bottleName, instance, hash string) map[string]string {
	return map[string]string{
		bottle.LabelManagedBy:   bottle.ManagedByValue,
		bottle.LabelInstance:    instance,
		bottle.LabelBottle:      bottleName,
		bottle.LabelRole:        string(bottle.RoleGuest),
		bottle.LabelHash:        hash,
		bottle.LabelHashVersion: "1",
	}
}

func TestObserveTestdata(t *testing.T) {
	list, err := os.ReadFile("testdata/list.json")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRunner{answers: map[string]fakeAnswer{"machine ls": {stdout: string(list)}}}
	// The listing alone: the host layer's checks are hostlayer_test.go's.
	d := newFakeDriver(t, f, Options{NoHostLayer: true})
	got, err := d.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	minimal := func(bottleName string) map[string]string {
		return map[string]string{bottle.LabelManagedBy: bottle.ManagedByValue, bottle.LabelBottle: bottleName}
	}
	guest := func(name, bottleName, instance, hash string, labels map[string]string, st bottle.State, detail string) bottle.Resource {
		hv := labels[bottle.LabelHashVersion]
		return bottle.Resource{Kind: "smolvm", Role: bottle.RoleGuest, Bottle: bottleName, Instance: instance,
			Name: name, Hash: hash, HashVersion: hv, Labels: labels, State: st, Detail: detail}
	}
	// Sorted by name; the unlabelled, foreign-labelled and ephemeral rows
	// (agent-7, bottle-unlabelled, bottle-gina, vm-3a9c1d) are not ours.
	want := []bottle.Resource{
		guest("bottle-alice", "alice", "host-a", "3f2a", ourLabels("alice", "host-a", "3f2a"), bottle.StateRunning, "running"),
		guest("bottle-bob", "bob", "host-a", "77aa", ourLabels("bob", "host-a", "77aa"), bottle.StateCreated, "created"),
		guest("bottle-carol", "carol", "host-b", "c0ff", ourLabels("carol", "host-b", "c0ff"), bottle.StateStopped, "failed"),
		guest("bottle-dave", "dave", "", "", minimal("dave"), bottle.StateStopped, "unreachable"),
		guest("bottle-erin", "erin", "", "", minimal("erin"), bottle.StateStopped, "frozen"),
		guest("bottle-frank", "frank", "", "", minimal("frank"), bottle.StateStopped, "stopped"),
	}
	want[4].Broken = frozenBroken // bottle-erin
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Observe =\n%+v\nwant\n%+v", got, want)
	}
	if s := f.subcommands(); len(s) != 1 || s[0] != "machine ls" {
		t.Errorf("Observe made calls %q, want exactly one machine ls", s)
	}
	if c, _ := f.find("machine ls"); joined(c.args) != "machine ls --json" {
		t.Errorf("listing argv = %q", c.args)
	}
}

func TestObserveErrors(t *testing.T) {
	tests := []struct {
		name string
		ans  fakeAnswer
	}{
		{name: "not json", ans: fakeAnswer{stdout: "Created machine: x\n"}},
		{name: "object not array", ans: fakeAnswer{stdout: `{"name":"x"}`}},
		{name: "row without name", ans: fakeAnswer{stdout: `[{"state":"running"}]`}},
		{name: "smolvm fails", ans: fakeAnswer{exitCode: 1, stderr: "Error: database is locked\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{answers: map[string]fakeAnswer{"machine ls": tt.ans}}
			d := newFakeDriver(t, f, Options{})
			got, err := d.Observe(context.Background())
			if err == nil {
				t.Fatalf("Observe = %v, want an error (never a partial list)", got)
			}
			if got != nil {
				t.Errorf("Observe returned %v with its error", got)
			}
		})
	}
}

func TestObserveEmpty(t *testing.T) {
	d := newFakeDriver(t, &fakeRunner{}, Options{})
	got, err := d.Observe(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("Observe = %v, %v; want nothing", got, err)
	}
}

func TestMapState(t *testing.T) {
	tests := map[string]bottle.State{
		"running":     bottle.StateRunning,
		"created":     bottle.StateCreated,
		"stopped":     bottle.StateStopped,
		"failed":      bottle.StateStopped,
		"unreachable": bottle.StateStopped,
		"frozen":      bottle.StateStopped,
		"booting":     bottle.StateUnknown,
		"":            bottle.StateUnknown,
	}
	for in, want := range tests {
		if got := mapState(in); got != want {
			t.Errorf("mapState(%q) = %q, want %q", in, got, want)
		}
	}
}

// A frozen machine is reported Broken, so the diff replaces it instead of
// starting it on every pass; no other state is.
func TestFrozenIsBroken(t *testing.T) {
	for _, state := range []string{"running", "created", "stopped", "failed", "unreachable", "frozen"} {
		m := machine{Name: "bottle-a", State: state, Labels: ourLabels("a", "i", "h")}
		got := m.resource().Broken
		if (state == "frozen") != (got != "") {
			t.Errorf("state %s: Broken = %q", state, got)
		}
	}
}
