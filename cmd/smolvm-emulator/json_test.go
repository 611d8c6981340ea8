package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// jsonKeys is the exact field set of §2 of the reference, sorted.
var jsonKeys = []string{
	"cmd", "cpus", "created_at", "cuda", "cuda_fork_pool_size", "cuda_vram_limit_mib", "entrypoint",
	"ephemeral", "forkable", "forkpoint_held", "gpu", "gpu_vram_mib", "health_cmd", "health_interval_secs",
	"health_retries", "health_startup_grace_secs", "health_timeout_secs", "image", "labels",
	"memory_mib", "mounts", "name", "network", "overlay_gb", "pid", "ports", "restart_count",
	"restart_max_retries", "restart_policy", "state", "storage_gb",
}

// objectKeys returns the keys of a JSON object in the order they appear.
func objectKeys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestJSONShape(t *testing.T) {
	e := newEmu(t)
	want{stdout: "[]\n"}.check(t, e.run("machine", "ls", "--json"))
	e.must("machine", "create", "-n", "bare")
	e.must("machine", "create", "-n", "img", "-I", "ghcr.io/org/agent:1", "--net", "--storage", "30",
		"--label", "spec-hash=3f2a", "-p", "8080:80", "-p", "9090", "--", "sleep", "infinity")

	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(e.must("vm", "list", "--json").stdout), &arr); err != nil || len(arr) != 2 {
		t.Fatalf("ls --json: %v, %d elements", err, len(arr))
	}
	byName := map[string]map[string]any{}
	for _, raw := range arr {
		if keys := objectKeys(t, raw); !slices.Equal(keys, jsonKeys) {
			t.Errorf("keys = %v\nwant %v", keys, jsonKeys)
		}
		var m map[string]any
		json.Unmarshal(raw, &m)
		byName[m["name"].(string)] = m
	}
	statusRaw := e.must("machine", "status", "-n", "img", "--json").stdout
	if keys := objectKeys(t, json.RawMessage(statusRaw)); !slices.Equal(keys, jsonKeys) {
		t.Errorf("status keys = %v", keys)
	}

	tests := []struct {
		machine, key string
		want         any
	}{
		{"bare", "labels", map[string]any{}},
		{"bare", "image", nil},
		{"bare", "cmd", []any{}},
		{"bare", "entrypoint", []any{}},
		{"bare", "ephemeral", false},
		{"bare", "network", false},
		{"bare", "pid", nil},
		{"bare", "state", "created"},
		{"bare", "storage_gb", nil},
		{"bare", "overlay_gb", nil},
		{"bare", "restart_policy", "never"},
		{"img", "labels", map[string]any{"spec-hash": "3f2a"}},
		{"img", "image", "ghcr.io/org/agent:1"},
		{"img", "cmd", []any{"sleep", "infinity"}},
		{"img", "network", true},
		{"img", "ports", float64(2)},
		{"img", "mounts", float64(0)},
		{"img", "storage_gb", float64(30)},
		{"img", "cpus", float64(4)},
		{"img", "memory_mib", float64(8192)},
	}
	for _, tt := range tests {
		got, _ := json.Marshal(byName[tt.machine][tt.key])
		wantJSON, _ := json.Marshal(tt.want)
		if !bytes.Equal(got, wantJSON) {
			t.Errorf("%s.%s = %s, want %s", tt.machine, tt.key, got, wantJSON)
		}
	}
}

func TestJSONOldVersionHasNoLabels(t *testing.T) {
	e := newEmu(t)
	e.env = []string{"SMOLVM_EMU_VERSION=1.7.0"}
	e.must("machine", "create", "-n", "vm1")
	if _, ok := e.status("vm1")["labels"]; ok {
		t.Error("labels present in 1.7.0 output")
	}
}

// TestLsOrderIsArbitrary checks that ls --json does not keep a stable order,
// so a driver that relies on it fails against the emulator too.
func TestLsOrderIsArbitrary(t *testing.T) {
	e := newEmu(t)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		e.must("machine", "create", "-n", n)
	}
	orders := map[string]bool{}
	for range 15 {
		var arr []struct{ Name string }
		json.Unmarshal([]byte(e.must("machine", "ls", "--json").stdout), &arr)
		var names []string
		for _, m := range arr {
			names = append(names, m.Name)
		}
		orders[strings.Join(names, ",")] = true
	}
	if len(orders) < 2 {
		t.Errorf("ls --json gave one order in 15 calls: %v", orders)
	}
}

func TestTextForms(t *testing.T) {
	e := newEmu(t)
	want{stdout: "No machines found.\n"}.check(t, e.run("machine", "ls"))
	e.must("machine", "create", "-n", "vm1", "-e", "K=V")
	want{stdout: "NAME  STATE    CPUS  MEMORY    PID  IMAGE\nvm1   created  4     8192 MiB  -    -\n  Env: K=V\n"}.
		check(t, e.run("machine", "ls", "-v"))
	want{stdout: "Machine 'vm1': created\n"}.check(t, e.run("machine", "status", "-n", "vm1"))
}
