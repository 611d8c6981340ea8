package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

// down says what it did, past tense, bottle by bottle: never a plan.
func TestDownReport(t *testing.T) {
	del := func(b string, role bottle.Role, name string) reconciler.Op {
		return reconciler.Op{Bottle: b, Action: reconciler.ActionDelete, Role: role, Name: name}
	}
	failed := del("bob", bottle.RoleBundle, "bottle-bob-bundle")
	p := &reconciler.Pass{
		Results: map[string]*reconciler.BottleResult{
			"alice": {Bottle: "alice", Done: []reconciler.Op{
				del("alice", bottle.RoleGuest, "bottle-alice"), del("alice", bottle.RoleBundle, "bottle-alice-bundle"),
				del("alice", bottle.RoleNetwork, "bottle-alice")}},
			"bob": {Bottle: "bob", Done: []reconciler.Op{del("bob", bottle.RoleGuest, "bottle-bob")}, Failed: &failed, Err: errors.New("boom")},
		},
		Plan: reconciler.Plan{Notes: []reconciler.Note{{Bottle: "carol", Kind: reconciler.NoteProtected, Message: "protect: true; pass --force"}}},
	}
	var b strings.Builder
	downReport(&b, p)
	want := "bottle alice: removed guest bottle-alice, bundle bottle-alice-bundle, network bottle-alice\n" +
		"bottle bob: not torn down: removing bundle bottle-bob-bundle failed (removed before that: guest bottle-bob)\n" +
		"bottle carol: left in place: protected: protect: true; pass --force\n" +
		"1 bottle(s) torn down, 1 failed, 1 left in place.\n"
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "Plan:") || strings.Contains(b.String(), "to delete") {
		t.Error("down printed a plan")
	}
}
