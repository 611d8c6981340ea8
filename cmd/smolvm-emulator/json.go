package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
)

// machineJSON is one element of `ls --json` and the object of `status
// --json` (vm_common::machine_status_json). Fields are declared in
// alphabetical order because serde_json (without preserve_order) sorts keys.
type machineJSON struct {
	Cmd                    []string           `json:"cmd"`
	CPUs                   int                `json:"cpus"`
	CreatedAt              int64              `json:"created_at"`
	Cuda                   bool               `json:"cuda"`
	CudaForkPoolSize       *int               `json:"cuda_fork_pool_size"`
	CudaVramLimitMiB       *int               `json:"cuda_vram_limit_mib"`
	Entrypoint             []string           `json:"entrypoint"`
	Ephemeral              bool               `json:"ephemeral"`
	Forkable               bool               `json:"forkable"`
	ForkpointHeld          bool               `json:"forkpoint_held"`
	GPU                    bool               `json:"gpu"`
	GPUVramMiB             *int               `json:"gpu_vram_mib"`
	HealthCmd              *string            `json:"health_cmd"` // the argv joined, or sh -c's script (vm_common.rs 2476)
	HealthIntervalSecs     *int               `json:"health_interval_secs"`
	HealthRetries          *int               `json:"health_retries"`
	HealthStartupGraceSecs *int               `json:"health_startup_grace_secs"`
	HealthTimeoutSecs      *int               `json:"health_timeout_secs"`
	Image                  *string            `json:"image"`
	Labels                 *map[string]string `json:"labels,omitempty"` // absent before v1.8.0
	MemoryMiB              int                `json:"memory_mib"`
	Mounts                 int                `json:"mounts"` // a count, not the list
	Name                   string             `json:"name"`
	Network                bool               `json:"network"`
	OverlayGB              *int               `json:"overlay_gb"`
	PID                    *int               `json:"pid"`   // raw record value: stale unless running
	Ports                  int                `json:"ports"` // a count, not the list
	RestartCount           int                `json:"restart_count"`
	RestartMaxRetries      int                `json:"restart_max_retries"`
	RestartPolicy          string             `json:"restart_policy"`
	State                  string             `json:"state"`
	StorageGB              *int               `json:"storage_gb"`
}

func (a *app) toJSON(r *Record) machineJSON {
	m := machineJSON{
		Cmd: nonNil(r.Cmd), CPUs: r.CPUs, CreatedAt: r.CreatedAt, Cuda: r.Cuda, Entrypoint: []string{},
		GPU: r.GPU, GPUVramMiB: r.GPUVramMiB, Image: r.Image, MemoryMiB: r.MemoryMiB, Mounts: len(r.Mounts),
		Name: r.Name, Network: r.Network, OverlayGB: r.OverlayGB, PID: r.PID, Ports: len(r.Ports),
		RestartPolicy: "never", State: a.observedState(r), StorageGB: r.StorageGB,
	}
	if versionAtLeast(a.version, "1.8.0") {
		labels := r.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		m.Labels = &labels
	}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeJSON prints v pretty like serde_json::to_string_pretty, without
// Go's HTML escaping.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}

// ls implements `machine ls|list [-v] [--json]`.
func (a *app) ls(p parsedArgs) error {
	var recs []*Record
	err := a.store.withLock(false, func(st *stateFile) error {
		for _, r := range st.Machines {
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if p.has("json") {
		// The real array comes from a HashMap: its order is arbitrary.
		// Shuffle so a caller that depends on the order breaks here too.
		rand.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		out := make([]machineJSON, 0, len(recs))
		for _, r := range recs {
			out = append(out, a.toJSON(r))
		}
		return writeJSON(a.stdout, out)
	}
	a.printTable(recs, p.has("verbose"))
	return nil
}

// printTable is the text form of ls. Its layout is not from the source;
// only the "Env: K=V" lines of -v are.
func (a *app) printTable(recs []*Record, verbose bool) {
	if len(recs) == 0 {
		fmt.Fprintln(a.stdout, "No machines found.")
		return
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	rows := [][]string{{"NAME", "STATE", "CPUS", "MEMORY", "PID", "IMAGE"}}
	for _, r := range recs {
		state, pid, image := a.observedState(r), "-", "-"
		if state == "running" {
			pid = fmt.Sprint(*r.PID)
		}
		if r.Image != nil {
			image = *r.Image
		}
		rows = append(rows, []string{r.Name, state, fmt.Sprint(r.CPUs), fmt.Sprintf("%d MiB", r.MemoryMiB), pid, image})
	}
	// Widths are computed up front because -v interleaves detail lines.
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	for i, row := range rows {
		var b strings.Builder
		for j, c := range row {
			if j == len(row)-1 {
				b.WriteString(c)
				break
			}
			fmt.Fprintf(&b, "%-*s  ", widths[j], c)
		}
		fmt.Fprintln(a.stdout, b.String())
		if verbose && i > 0 {
			a.printDetails(recs[i-1])
		}
	}
}

// printDetails is the verbose block of ls -v.
func (a *app) printDetails(r *Record) {
	for _, kv := range r.Env {
		fmt.Fprintf(a.stdout, "  Env: %s=%s\n", kv[0], kv[1])
	}
	if len(r.AllowedCIDRs) > 0 {
		fmt.Fprintf(a.stdout, "  Allowed CIDRs: %s\n", strings.Join(r.AllowedCIDRs, ", "))
	}
	for _, m := range r.Mounts {
		ro := ""
		if m.ReadOnly {
			ro = " (ro)"
		}
		fmt.Fprintf(a.stdout, "  Mount: %s -> %s%s\n", m.Source, m.Target, ro)
	}
	for _, p := range r.Ports {
		fmt.Fprintf(a.stdout, "  Port: %s\n", p)
	}
	keys := make([]string, 0, len(r.Labels))
	for k := range r.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(a.stdout, "  Label: %s=%s\n", k, r.Labels[k])
	}
}

// status implements `machine status [-n NAME] [--json]`.
func (a *app) status(p parsedArgs) error {
	name := nameOrDefault(p)
	var rec *Record
	err := a.store.withLock(false, func(st *stateFile) error {
		rec = st.Machines[name]
		return nil
	})
	if err != nil {
		return err
	}
	asJSON := p.has("json")
	if rec == nil {
		if asJSON {
			return errorf("config operation failed: machine status: machine '%s' not found", name)
		}
		return errorf("vm not found: %s", name)
	}
	if asJSON {
		return writeJSON(a.stdout, a.toJSON(rec))
	}
	// Text form: not from the source.
	state := a.observedState(rec)
	if state == "running" {
		fmt.Fprintf(a.stdout, "Machine '%s': %s (PID: %d)\n", name, state, *rec.PID)
	} else {
		fmt.Fprintf(a.stdout, "Machine '%s': %s\n", name, state)
	}
	return nil
}
