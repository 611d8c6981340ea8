package main

import (
	"encoding/json"
	"io"
	"math"
	"time"
)

// The JSON report: every duration in milliseconds, samples included, so a
// plot needs nothing else.
type (
	jsonReport struct {
		Machine    machine         `json:"machine"`
		N          int             `json:"n"`
		Runs       int             `json:"runs"`
		Contenders []jsonContender `json:"contenders"`
		FloorOps   []jsonOp        `json:"floorOps,omitempty"`
		// bottle-reconcile's operations ("ROLE ACTION"), from its log.
		ReconcileOps []jsonOp `json:"reconcileOps,omitempty"`
		// The floor's observe as a process of its own, against which
		// bottle-reconcile's whole-process no-op is the ratio.
		FloorObserveProcess *jsonStat     `json:"floorObserveProcess,omitempty"`
		APICalls            *jsonAPICalls `json:"apiCalls,omitempty"`
		Idle                *jsonIdle     `json:"idle,omitempty"`
		Watch               *jsonWatch    `json:"watch,omitempty"`
	}
	jsonContender struct {
		Name    string    `json:"name"`
		Skipped string    `json:"skipped,omitempty"`
		Observe string    `json:"observeIs,omitempty"`
		Up      *jsonStat `json:"up,omitempty"`
		Noop    *jsonStat `json:"observe,omitempty"`
		Down    *jsonStat `json:"down,omitempty"`
	}
	jsonStat struct {
		MedianMs float64   `json:"medianMs"`
		MinMs    float64   `json:"minMs"`
		MaxMs    float64   `json:"maxMs"`
		Ratio    float64   `json:"ratioToFloor,omitempty"`
		Samples  []float64 `json:"samplesMs"`
	}
	jsonOp struct {
		Op     string  `json:"op"`
		Calls  int     `json:"calls"`
		MeanMs float64 `json:"meanMs"`
	}
	jsonCalls struct {
		Total     int            `json:"total"`
		Endpoints []apiCount     `json:"endpoints"`
		Paths     map[string]int `json:"paths"`
	}
	jsonAPICalls struct {
		NoopPass   *jsonCalls `json:"noopPass,omitempty"`
		WarmupUp   *jsonCalls `json:"warmupUp1,omitempty"`
		WarmupDown *jsonCalls `json:"warmupDown1,omitempty"`
	}
	jsonWindow struct {
		WindowMs   float64 `json:"windowMs"`
		BusyPct    float64 `json:"busyPctAllCores"`
		OneCorePct float64 `json:"pctOfOneCore"`
		// Docker's processes and the bundles, % of one core; absent in
		// reports from before they were recorded.
		DockerPct  *float64 `json:"dockerPctOfOneCore,omitempty"`
		BundlesPct *float64 `json:"bundlesPctOfOneCore,omitempty"`
	}
	jsonIdle struct {
		Baseline jsonWindow `json:"noBottles"`
		Bottles  jsonWindow `json:"withBottles"`
	}
	jsonWatch struct {
		NewSpecMs    float64 `json:"newSpecToReadyMs"`
		BundleHealMs float64 `json:"bundleRemovedToReadyMs"`
		EnvEditMs    float64 `json:"envEditToReadyMs"`
		MaxRSSKiB    int64   `json:"maxRSSKiB"`
		IdleCPUMs    float64 `json:"idleCPUMs"`
		IdleWindowMs float64 `json:"idleWindowMs"`
		ExitCode     int     `json:"exitCode"`
	}
)

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

func stat(ds []time.Duration, floor []time.Duration) *jsonStat {
	if len(ds) == 0 {
		return nil
	}
	s := summarize(ds)
	out := &jsonStat{MedianMs: ms(s.Median), MinMs: ms(s.Min), MaxMs: ms(s.Max)}
	for _, d := range ds {
		out.Samples = append(out.Samples, ms(d))
	}
	if f := summarize(floor).Median; f > 0 {
		out.Ratio = float64(s.Median) / float64(f)
	}
	return out
}

func calls(counts map[string]int) *jsonCalls {
	if counts == nil {
		return nil
	}
	eps, total := byEndpoint(counts)
	return &jsonCalls{Total: total, Endpoints: eps, Paths: counts}
}

func window(w idleWindow) jsonWindow {
	j := jsonWindow{WindowMs: ms(w.Window), BusyPct: w.BusyPct, OneCorePct: w.OneCorePct}
	if w.Window > 0 {
		d, b := w.pctOfOneCore(w.Docker), w.pctOfOneCore(w.Bundles)
		j.DockerPct, j.BundlesPct = &d, &b
	}
	return j
}

// writeJSON prints the report as one indented JSON document.
func (r *report) writeJSON(out io.Writer) error {
	j := jsonReport{Machine: r.Machine, N: r.N, Runs: r.Runs, Contenders: []jsonContender{}}
	var fl contenderResult
	if f := r.floorResult(); f != nil {
		fl = *f
	}
	for _, c := range r.Contenders {
		jc := jsonContender{Name: c.Name, Skipped: c.Skipped}
		if c.Skipped == "" {
			jc.Observe = observeHow[c.Name]
			jc.Up, jc.Noop, jc.Down = stat(c.Up, fl.Up), stat(c.Observe, fl.Observe), stat(c.Down, fl.Down)
		}
		j.Contenders = append(j.Contenders, jc)
	}
	if len(r.FloorObserveProcess) > 0 {
		j.FloorObserveProcess = stat(r.FloorObserveProcess, nil)
	}
	for _, o := range r.ReconcileOps {
		j.ReconcileOps = append(j.ReconcileOps, jsonOp{Op: o.Op, Calls: o.Count, MeanMs: ms(o.Mean)})
	}
	for _, o := range r.FloorOps {
		j.FloorOps = append(j.FloorOps, jsonOp{Op: o.Op, Calls: o.Count, MeanMs: ms(o.Mean)})
	}
	if r.NoopCalls != nil || r.WarmupUp != nil {
		j.APICalls = &jsonAPICalls{NoopPass: calls(r.NoopCalls), WarmupUp: calls(r.WarmupUp), WarmupDown: calls(r.WarmupDown)}
	}
	if r.Idle != nil {
		j.Idle = &jsonIdle{Baseline: window(r.Idle.Baseline), Bottles: window(r.Idle.Bottles)}
	}
	if w := r.Watch; w != nil {
		j.Watch = &jsonWatch{NewSpecMs: ms(w.NewSpec), BundleHealMs: ms(w.BundleHeal), EnvEditMs: ms(w.EnvEdit),
			MaxRSSKiB: w.MaxRSSKiB, IdleCPUMs: ms(w.IdleCPU), IdleWindowMs: ms(w.IdleWindow), ExitCode: w.ExitCode}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}
