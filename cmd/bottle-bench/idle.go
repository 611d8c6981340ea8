package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is the first line of /proc/stat: every core's time, in ticks.
type cpuTimes struct {
	Busy, Total uint64
}

// parseProcStat reads the aggregate "cpu" line of /proc/stat. Idle and
// iowait are idle; everything else (user, nice, system, irq, softirq,
// steal) is busy. Guest time is already inside user.
func parseProcStat(data string) (cpuTimes, error) {
	first, _, _ := strings.Cut(data, "\n")
	f := strings.Fields(first)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: first line %q is not the cpu line", first)
	}
	var t cpuTimes
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are counted in user already
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: field %d %q: %w", i+1, s, err)
		}
		t.Total += v
		if i != 3 && i != 4 { // idle, iowait
			t.Busy += v
		}
	}
	return t, nil
}

func readCPU() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseProcStat(string(b))
}

// idleWindow is the host's CPU use over a window.
type idleWindow struct {
	Window time.Duration
	// BusyPct is the share of all cores' time that was busy; OneCorePct the
	// same as a share of one core (BusyPct times the core count).
	BusyPct    float64
	OneCorePct float64
	// Top is the CPU time of the busiest process names over the window.
	Top []nameCPU
	// Docker and Bundles are the CPU time of Docker's processes and of
	// the bundles over the window (groups).
	Docker, Bundles time.Duration
}

// pctOfOneCore is CPU time d over the window, as a share of one core.
func (w idleWindow) pctOfOneCore(d time.Duration) float64 {
	if w.Window <= 0 {
		return 0
	}
	return 100 * d.Seconds() / w.Window.Seconds()
}

// busyBetween turns two samples into an idleWindow.
func busyBetween(a, b cpuTimes, window time.Duration, cores int) idleWindow {
	w := idleWindow{Window: window}
	if b.Total > a.Total {
		w.BusyPct = 100 * float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
	}
	w.OneCorePct = w.BusyPct * float64(cores)
	return w
}

// sampleIdle measures the host's CPU use over d, and who used it.
func sampleIdle(ctx context.Context, d time.Duration) (idleWindow, error) {
	a, err := readCPU()
	if err != nil {
		return idleWindow{}, err
	}
	pa := procTimes()
	start := time.Now()
	if err := sleep(ctx, d); err != nil {
		return idleWindow{}, err
	}
	b, err := readCPU()
	if err != nil {
		return idleWindow{}, err
	}
	w := busyBetween(a, b, time.Since(start), runtime.NumCPU())
	all := byName(pa, procTimes(), math.MaxInt)
	w.Top = all[:min(6, len(all))]
	w.Docker, w.Bundles = groups(all)
	return w, nil
}

// idleResult is the footprint of N idle bottles: the host's CPU with none
// and with them, no reconciler running.
type idleResult struct {
	Baseline idleWindow
	Bottles  idleWindow
}
