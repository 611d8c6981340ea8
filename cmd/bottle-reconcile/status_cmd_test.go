package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

// TestStatusOutput checks status's fields, in JSON for tools and in the
// table for people: state, resources, last error, last reconciled, next
// retry.
func TestStatusOutput(t *testing.T) {
	dir, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	retry := now.Add(8 * time.Second)
	store := reconciler.StatusStore{Dir: state}
	for _, st := range []reconciler.Status{
		{Bottle: "a", State: reconciler.StatusReady, LastReconciled: now, Resources: []reconciler.StatusResource{
			{Role: bottle.RoleNetwork, Kind: "docker-network", Name: "bottle-a", Subnet: "10.213.0.0/29"},
			{Role: bottle.RoleBundle, Kind: "docker-bundle", Name: "bottle-a-bundle", State: bottle.StateRunning, Health: bottle.HealthHealthy, Addr: "10.213.0.2"},
		}},
		{Bottle: "b", State: reconciler.StatusFailed, LastError: "create guest: image not found", Failures: 4, LastReconciled: now, NextRetry: &retry},
		{Bottle: "c", State: reconciler.StatusSuspended, LastReconciled: now},
		{Bottle: "d", State: reconciler.StatusInvalid, Reason: "d.yaml:7:3: spec.image: missing", LastReconciled: now},
		{Bottle: "e", State: reconciler.StatusBlocked, Reason: "bundle missing", LastError: "a container of that name exists and is not managed by bottle-reconcile; remove or rename it", LastReconciled: now},
	} {
		if err := store.Write(st); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errs := runCmd(t, "status", "-o", "json", "--state-dir", state, dir)
	if code != 0 {
		t.Fatalf("status -o json: exit %d\n%s", code, errs)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 5 {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	a, b := got[0], got[1]
	if a["state"] != "Ready" || a["lastReconciled"] != "2026-01-02T03:04:05Z" || len(a["resources"].([]any)) != 2 {
		t.Errorf("ready bottle: %v", a)
	}
	if r := a["resources"].([]any)[1].(map[string]any); r["role"] != "bundle" || r["health"] != "healthy" || r["addr"] != "10.213.0.2" {
		t.Errorf("bundle resource: %v", r)
	}
	if b["state"] != "Failed" || b["lastError"] != "create guest: image not found" || b["nextRetry"] != "2026-01-02T03:04:13Z" || b["failures"] != 4.0 {
		t.Errorf("failed bottle: %v", b)
	}
	if got[2]["state"] != "Suspended" || got[3]["state"] != "Invalid" || got[4]["state"] != "Blocked" || got[4]["nextRetry"] != nil {
		t.Errorf("states: %v, %v, %v", got[2]["state"], got[3]["state"], got[4])
	}

	code, out, _ = runCmd(t, "status", "--state-dir", state, dir)
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	for _, want := range []string{"LAST RECONCILED", "NEXT RETRY", "image not found", retry.Local().Format(time.TimeOnly), "10.213.0.2 running healthy", "Suspended", "d.yaml:7:3", "Blocked", "on change", "remove or rename it"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}
