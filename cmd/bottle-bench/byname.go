package main

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The host's busy share says how much, not who. An idle window also
// records CPU time by process name, so the table shows what the bottles
// cost (containerd-shim, dockerd, the bundles) apart from the rest.

// nameCPU is one process name's CPU time over a window.
type nameCPU struct {
	Name string
	CPU  time.Duration
}

// procTimes returns the CPU time of every process now, by pid, with its
// command name. Processes that vanish while being read are left out.
func procTimes() map[int]nameCPU {
	out := map[int]nameCPU{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		cpu, err := parsePidStat(s)
		if err != nil {
			continue
		}
		out[pid] = nameCPU{Name: s[open+1 : end], CPU: cpu}
	}
	return out
}

// byName sums, by command name, the CPU time processes alive at both
// samples spent between them, most first; at most top names.
func byName(a, b map[int]nameCPU, top int) []nameCPU {
	sum := map[string]time.Duration{}
	for pid, y := range b {
		if x, ok := a[pid]; ok && x.Name == y.Name && y.CPU > x.CPU {
			sum[y.Name] += y.CPU - x.CPU
		}
	}
	out := make([]nameCPU, 0, len(sum))
	for n, d := range sum {
		out = append(out, nameCPU{n, d})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CPU != out[j].CPU {
			return out[i].CPU > out[j].CPU
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > top {
		out = out[:top]
	}
	return out
}

// Who an idle bottle's CPU goes to, by command name (as the kernel cuts it,
// 15 bytes): Docker's own processes, which any container costs, and the
// bundles, which are bottle-reconcile's.
var (
	dockerProcs = map[string]bool{"dockerd": true, "containerd": true, "containerd-shim": true, "runc": true, "docker-proxy": true}
	bundleProc  = "bottle-reconcil" // /bottle-reconcile bundle, in its container
)

// groups sums byName's rows into Docker's processes and the bundles.
func groups(rows []nameCPU) (docker, bundles time.Duration) {
	for _, r := range rows {
		switch {
		case dockerProcs[r.Name]:
			docker += r.CPU
		case r.Name == bundleProc:
			bundles += r.CPU
		}
	}
	return docker, bundles
}
