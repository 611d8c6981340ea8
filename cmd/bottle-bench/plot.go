package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// plotRow is one report's point: N, the no-op pass of bottle-reconcile and
// the floor's observe (ms), and the idle host CPU the bottles cost above
// the baseline (% of one core): the whole host's, Docker's processes' and
// the bundles', the last two where the report has them.
type plotRow struct {
	N                     int
	Noop, FloorNoop       float64
	FloorProc             float64 // the floor's observe as a process of its own
	HasIdle               bool
	IdlePct               float64
	HasSplit              bool
	DockerPct, BundlesPct float64
}

// plotRows reads the points from JSON reports (bottle-bench -json).
func plotRows(files []string) ([]plotRow, error) {
	var rows []plotRow
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		var j jsonReport
		if err := json.Unmarshal(b, &j); err != nil {
			return nil, fmt.Errorf("plot: decode %s: %w", f, err)
		}
		r := plotRow{N: j.N}
		if j.FloorObserveProcess != nil {
			r.FloorProc = j.FloorObserveProcess.MedianMs
		}
		for _, c := range j.Contenders {
			switch {
			case c.Noop == nil:
			case c.Name == "bottle-reconcile":
				r.Noop = c.Noop.MedianMs
			case c.Name == "floor":
				r.FloorNoop = c.Noop.MedianMs
			}
		}
		if j.Idle != nil {
			r.HasIdle = true
			r.IdlePct = j.Idle.Bottles.OneCorePct - j.Idle.Baseline.OneCorePct
			b, w := j.Idle.Baseline, j.Idle.Bottles
			if b.DockerPct != nil && w.DockerPct != nil && w.BundlesPct != nil {
				r.HasSplit = true
				r.DockerPct, r.BundlesPct = *w.DockerPct-*b.DockerPct, *w.BundlesPct
			}
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, errors.New("plot: no reports given")
	}
	sort.Slice(rows, func(i, k int) bool { return rows[i].N < rows[k].N })
	return rows, nil
}

// plotData is the gnuplot data file: N, no-op ms, floor ms, idle % of the
// host, of Docker's processes and of the bundles, the floor's observe as a
// process in ms.
func plotData(rows []plotRow) string {
	var b strings.Builder
	b.WriteString("# N noop_ms floor_ms idle_pct_of_one_core docker_pct bundles_pct floor_process_ms\n")
	// gnuplot leaves out NaN: a report without a figure has no point there.
	num := func(ok bool, v float64) string {
		if !ok {
			return "NaN"
		}
		return fmt.Sprintf("%.3f", v)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "%d %s %s %s %s %s %s\n", r.N, num(r.Noop > 0, r.Noop), num(r.FloorNoop > 0, r.FloorNoop), num(r.HasIdle, r.IdlePct),
			num(r.HasSplit, r.DockerPct), num(r.HasSplit, r.BundlesPct), num(r.FloorProc > 0, r.FloorProc))
	}
	return b.String()
}

const plotScript = `set terminal pngcairo size 1000,420 font "sans,10"
set output OUT
set multiplot layout 1,2 title "bottle-reconcile at N bottles (docker guests, one host)"
set xlabel "bottles (N)"
set grid
set key top left Left reverse
# Headroom above the highest point, so the key never covers it.
set offsets 0, 0, graph 0.2, 0
set logscale x
set title "no-op pass, whole process"
set ylabel "ms (median)"
set yrange [0:*]
plot DATA using 1:2 with linespoints lw 2 title "bottle-reconcile --once", \
     DATA using 1:7 with linespoints lw 2 title "floor: its 2 list calls as a process of its own", \
     DATA using 1:3 with linespoints lw 2 title "floor: 2 list calls in-process"
set title "idle host CPU above baseline, no reconciler running"
set ylabel "% of one core"
set yrange [*:*]
plot DATA using 1:4 with linespoints lw 2 title "the whole host", \
     DATA using 1:5 with linespoints lw 2 title "Docker's processes (dockerd, containerd, shims)", \
     DATA using 1:6 with linespoints lw 2 title "bottle-reconcile's bundles", \
     1 with lines dt 2 title "1% of one core"
unset multiplot
`

// plot writes a PNG of no-op pass time and idle CPU against N with
// gnuplot (Debian's gnuplot-nox).
func plot(ctx context.Context, out string, files []string) error {
	rows, err := plotRows(files)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bottle-bench-plot-")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "points.dat")
	if err := os.WriteFile(data, []byte(plotData(rows)), 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	cmd := exec.CommandContext(ctx, "gnuplot", "-e", fmt.Sprintf("OUT=%q; DATA=%q", out, data), "-")
	cmd.Stdin = strings.NewReader(plotScript)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("plot: gnuplot: %w: %s", err, b)
	}
	return nil
}
