package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the tick of /proc/PID/stat times: USER_HZ, 100 on Linux
// whatever the kernel's own HZ.
const userHZ = 100

// parsePidStat returns the CPU time of a process and of its waited-for
// children from the text of /proc/PID/stat.
func parsePidStat(data string) (time.Duration, error) {
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := strings.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/PID/stat: no command name in %q", data)
	}
	f := strings.Fields(data[i+1:])
	// f[0] is field 3 (state); utime, stime, cutime, cstime are 14 to 17.
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields after the name, want 15 or more", len(f))
	}
	var ticks int64
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: %q: %w", s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	return parsePidStat(string(b))
}

// procHWM returns a process's peak resident set (VmHWM), in KiB.
func procHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("pid %d: VmHWM %q: %w", pid, v, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("pid %d: no VmHWM in /proc/%d/status", pid, pid)
}
