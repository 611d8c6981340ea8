package main

import (
	"os"
	"syscall"

	"github.com/bottle-reconcile/bottle-reconcile/internal/cgroup2"
)

// A real guest's traffic leaves the host from smolvm's gateway, which runs
// inside the VMM process, in the host's network namespace. So that a test
// can check what the host kernel lets a VMM reach (bottle-reconcile's host
// layer), `machine exec` runs its command in the VMM stand-in's cgroup v2:
// the command's sockets are where the gateway's would be.

// vmmCgroup opens the cgroup v2 directory of the VMM with pid, or returns
// nil when it cannot tell (no cgroup2 mount, the process gone): the
// command then runs where the emulator runs, as before.
func vmmCgroup(pid int) *os.File {
	root, err := cgroup2.Root("/proc/self/mountinfo")
	if err != nil || pid <= 0 {
		return nil
	}
	p, err := cgroup2.Of("/proc", pid)
	if err != nil {
		return nil
	}
	f, err := os.Open(root + p)
	if err != nil {
		return nil
	}
	return f
}

// inCgroup makes attr start its process in the cgroup dir, when there is one.
func inCgroup(attr *syscall.SysProcAttr, dir *os.File) {
	if dir != nil {
		attr.UseCgroupFD, attr.CgroupFD = true, int(dir.Fd())
	}
}
