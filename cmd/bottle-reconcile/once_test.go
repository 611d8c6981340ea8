package main

import (
	"errors"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func TestWaitingOnly(t *testing.T) {
	note := func(kind reconciler.NoteKind) reconciler.Note {
		return reconciler.Note{Bottle: "b-" + string(kind), Kind: kind}
	}
	pass := func(notes ...reconciler.Note) *reconciler.Pass {
		return &reconciler.Pass{Specs: &spec.Result{}, Plan: reconciler.Plan{Notes: notes}}
	}
	failed := pass(note(reconciler.NoteWaiting))
	failed.Results = map[string]*reconciler.BottleResult{"x": {Err: errors.New("boom")}}
	invalid := pass(note(reconciler.NoteWaiting))
	invalid.Specs.Problems = []spec.Problem{{File: "x.yaml", Message: "bad"}}
	tests := []struct {
		name string
		p    *reconciler.Pass
		want bool
	}{
		{"nil", nil, false},
		{"converged", pass(), false},
		{"waiting", pass(note(reconciler.NoteWaiting)), true},
		{"waiting and protected", pass(note(reconciler.NoteWaiting), note(reconciler.NoteProtected), note(reconciler.NoteSuspended)), true},
		{"waiting and capped", pass(note(reconciler.NoteWaiting), note(reconciler.NoteCapped)), false},
		{"waiting and held", pass(note(reconciler.NoteHeld), note(reconciler.NoteWaiting)), false},
		{"waiting and a failed bottle", failed, false},
		{"waiting and an invalid file", invalid, false},
	}
	for _, tt := range tests {
		if got := waitingOnly(tt.p); got != tt.want {
			t.Errorf("%s: waitingOnly = %v, want %v", tt.name, got, tt.want)
		}
	}
}
