package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one benchmark run found.
type report struct {
	Machine    machine
	N, Runs    int
	Contenders []*contenderResult
	FloorOps   []opStat
	// ReconcileOps are bottle-reconcile's operations, from its own log.
	ReconcileOps []opStat
	// FloorObserveProcess is the floor's observe as a process of its own.
	FloorObserveProcess []time.Duration
	// Docker API calls of bottle-reconcile, by "METHOD /path".
	NoopCalls, WarmupUp, WarmupDown map[string]int
	Idle                            *idleResult
	Watch                           *watchResult
}

// What each contender's observe column measures.
var observeHow = map[string]string{
	"floor":            "NetworkList + ContainerList, label-filtered, in-process",
	"cli":              "docker network ls + docker ps -a, label-filtered",
	"compose":          "docker-compose up -d again, every container up to date",
	"bottle-reconcile": "a whole no-op --once process",
}

// busyBaseline is the host CPU share above which an idle baseline is
// flagged as disturbed.
const busyBaseline = 5.0

// fmtDur prints a duration with the precision a reader can use.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0ms"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// cell is a median with its range, the range left out for one sample.
func cell(s summary) string {
	if len(s.Samples) == 0 {
		return "-"
	}
	if len(s.Samples) == 1 {
		return fmtDur(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtDur(s.Median), fmtDur(s.Min), fmtDur(s.Max))
}

// ratio is a against the floor's f, as "1.18x".
func ratio(a, f time.Duration) string {
	if a <= 0 || f <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(f))
}

// floorResult returns the floor's row, if it ran.
func (r *report) floorResult() *contenderResult {
	for _, c := range r.Contenders {
		if c.Name == "floor" && c.Skipped == "" {
			return c
		}
	}
	return nil
}

// writeText prints the report as aligned tables.
func (r *report) writeText(out io.Writer) {
	m := r.Machine
	fmt.Fprintf(out, "bottle-bench  %s\n", m.BenchStartedAt)
	fmt.Fprintf(out, "machine   %d cores, %.1f GiB RAM, %s\n", m.Cores, float64(m.MemoryMiB)/1024, m.Kernel)
	compose := "not installed"
	if m.Compose != "" {
		compose = m.Compose
	}
	fmt.Fprintf(out, "docker    server %s (API %s); docker-compose %s\n", m.Docker, m.DockerAPI, compose)
	fmt.Fprintf(out, "load      loadavg %s at start, %s at end; %d other containers running at start\n", m.LoadStart, m.LoadEnd, m.OtherContainers)
	fmt.Fprintf(out, "run       N=%d bottles, %d runs, median (min–max); observe %d times per run; commit %s; %s\n\n",
		r.N, r.Runs, observeSamples, m.Commit, m.BundleImage)

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CONTENDER\tUP %d\tx FLOOR\tOBSERVE / NO-OP\tx FLOOR\tDOWN %d\tx FLOOR\n", r.N, r.N)
	fl := r.floorResult()
	for _, c := range r.Contenders {
		if c.Skipped != "" {
			fmt.Fprintf(tw, "%s\tskipped: %s\t\t\t\t\t\n", c.Name, c.Skipped)
			continue
		}
		up, ob, dn := summarize(c.Up), summarize(c.Observe), summarize(c.Down)
		var fu, fo, fd time.Duration
		if fl != nil {
			fu, fo, fd = summarize(fl.Up).Median, summarize(fl.Observe).Median, summarize(fl.Down).Median
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, cell(up), ratio(up.Median, fu),
			cell(ob), ratio(ob.Median, fo), cell(dn), ratio(dn.Median, fd))
	}
	tw.Flush()
	fmt.Fprintln(out, "\nobserve / no-op is")
	for _, c := range r.Contenders {
		if c.Skipped == "" {
			fmt.Fprintf(out, "  %-17s %s\n", c.Name, observeHow[c.Name])
		}
	}
	if len(r.FloorObserveProcess) > 0 {
		fp := summarize(r.FloorObserveProcess)
		line := fmt.Sprintf("  %-17s the floor's observe as a process of its own (start, connect, 2 lists): %s", "floor (process)", cell(fp))
		for _, c := range r.Contenders {
			if c.Name == "bottle-reconcile" && c.Skipped == "" {
				line += fmt.Sprintf("; bottle-reconcile's no-op is %s that", ratio(summarize(c.Observe).Median, fp.Median))
			}
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out, "floor, cli and compose wait for nothing once containers start; bottle-reconcile also waits for each bundle\n"+
		"to be ready before starting its guest, installs host firewall rules and narrows the guest's routes.")

	if len(r.FloorOps) > 0 {
		fmt.Fprintln(out, "\nfloor, per Docker API call (mean over every run; 4 bottles at once)")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  OPERATION\tCALLS\tMEAN")
		for _, o := range r.FloorOps {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", o.Op, o.Count, fmtDur(o.Mean))
		}
		tw.Flush()
	}

	if cmp := compareOps(r.FloorOps, r.ReconcileOps); len(cmp) > 0 {
		fmt.Fprintln(out, "\nper resource, mean over every run (4 bottles at once): the floor's calls against bottle-reconcile's operation")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  OPERATION\tFLOOR\tBOTTLE-RECONCILE\tx FLOOR\tTHE FLOOR'S CALLS\tBOTTLE-RECONCILE ALSO")
		dur := func(d time.Duration) string {
			if d <= 0 {
				return "-"
			}
			return fmtDur(d)
		}
		for _, c := range cmp {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Op, dur(c.FloorMean), dur(c.OursMean), ratio(c.OursMean, c.FloorMean), strings.Join(c.Floor, " + "), c.Adds)
		}
		tw.Flush()
	}

	if r.NoopCalls != nil {
		eps, total := byEndpoint(r.NoopCalls)
		fmt.Fprintf(out, "\nDocker API calls of one bottle-reconcile no-op pass over %d bottles: %d (%d distinct endpoints)\n", r.N, total, len(eps))
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, e := range eps {
			fmt.Fprintf(tw, "  %s\t%d\n", e.Endpoint, e.Calls)
		}
		tw.Flush()
	}
	if r.WarmupUp != nil {
		_, up := byEndpoint(r.WarmupUp)
		_, dn := byEndpoint(r.WarmupDown)
		fmt.Fprintf(out, "warm-up, 1 bottle: cold converge %d calls, down %d calls\n", up, dn)
	}

	if r.Idle != nil {
		fmt.Fprintln(out, "\nidle host CPU, no reconciler running")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  \tWINDOW\tBUSY, ALL CORES\tAS % OF ONE CORE")
		b, w := r.Idle.Baseline, r.Idle.Bottles
		fmt.Fprintf(tw, "  no bottles\t%s\t%.2f%%\t%.1f%%\n", fmtDur(b.Window), b.BusyPct, b.OneCorePct)
		fmt.Fprintf(tw, "  %d bottles (bottle-reconcile)\t%s\t%.2f%%\t%.1f%%\n", r.N, fmtDur(w.Window), w.BusyPct, w.OneCorePct)
		fmt.Fprintf(tw, "  difference\t\t%+.2f%%\t%+.1f%%\n", w.BusyPct-b.BusyPct, w.OneCorePct-b.OneCorePct)
		tw.Flush()
		fmt.Fprintf(out, "  of which Docker's processes (dockerd, containerd, shims) %+.2f%% of one core, bottle-reconcile's bundles %.2f%%\n",
			w.pctOfOneCore(w.Docker)-b.pctOfOneCore(b.Docker), w.pctOfOneCore(w.Bundles))
		for _, x := range []struct {
			what string
			w    idleWindow
		}{{"no bottles", b}, {fmt.Sprintf("%d bottles", r.N), w}} {
			var top []string
			for _, n := range x.w.Top {
				top = append(top, fmt.Sprintf("%s %.2f%%", n.Name, 100*n.CPU.Seconds()/x.w.Window.Seconds()))
			}
			fmt.Fprintf(out, "  busiest processes, %s (%% of one core): %s\n", x.what, strings.Join(top, ", "))
		}
		if b.BusyPct > busyBaseline {
			fmt.Fprintf(out, "  the baseline was not idle (over %.0f%% busy): something else ran on this host, so the difference is noise\n", busyBaseline)
		}
	}

	if wr := r.Watch; wr != nil {
		fmt.Fprintf(out, "\nwatch mode, %d bottles converged (status polled every %s)\n", r.N, pollEvery)
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  new spec file -> Ready\t%s\n", fmtDur(wr.NewSpec))
		fmt.Fprintf(tw, "  bundle removed (rm -f) -> new bundle running, Ready\t%s\n", fmtDur(wr.BundleHeal))
		for _, o := range r.FloorOps {
			if o.Op == healOp {
				fmt.Fprintf(tw, "  floor: a bundle removed and made again back to back (no wait for anything)\t%s\n", fmtDur(o.Mean))
			}
		}
		fmt.Fprintf(tw, "  env edited -> new guest, Ready\t%s\n", fmtDur(wr.EnvEdit))
		fmt.Fprintf(tw, "  max RSS (VmHWM)\t%.1f MiB\n", float64(wr.MaxRSSKiB)/1024)
		fmt.Fprintf(tw, "  CPU while idle\t%s over %s (%.2f%% of one core)\n", fmtDur(wr.IdleCPU), fmtDur(wr.IdleWindow),
			100*wr.IdleCPU.Seconds()/wr.IdleWindow.Seconds())
		fmt.Fprintf(tw, "  exit code after SIGTERM\t%d\n", wr.ExitCode)
		tw.Flush()
	}
}
