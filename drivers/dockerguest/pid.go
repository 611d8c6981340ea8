package dockerguest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Observe reads every running guest's routes. Asking Docker for each
// guest's pid would make a pass cost one call per bottle, so the pid comes
// from the kernel instead: a container's cgroup lists its processes, and
// routes need only one of them in the guest's network namespace (see
// netPID). Where the cgroup is not found (a cgroup parent or layout not
// listed here), errPIDUnknown sends the caller back to Docker.
//
// Only reads use it. What changes a guest's routes asks Docker for the pid
// as before, so a pid reused between the read and the write can at worst
// make a spurious drift, never a change to another namespace.

var errPIDUnknown = errors.New("container cgroup not found")

// cgroupLayouts are where Docker puts a container's cgroup, relative to the
// cgroup mount, with %s for the full container ID: cgroup v2 with the
// systemd or cgroupfs driver, then v1 (and the hybrid unified tree).
var cgroupLayouts = []string{
	"system.slice/docker-%s.scope",
	"docker/%s",
	"pids/docker/%s",
	"pids/system.slice/docker-%s.scope",
	"unified/docker/%s",
	"unified/system.slice/docker-%s.scope",
	"memory/docker/%s",
	"memory/system.slice/docker-%s.scope",
}

// cgroupPIDs finds containers' pids under a cgroup mount and /proc.
type cgroupPIDs struct {
	root string // the cgroup mount, /sys/fs/cgroup
	proc string // /proc
	// hit is the index of the layout that last matched, tried first.
	hit *atomic.Int32
	// ours are this process's namespaces by kind ("pid", "net"), each
	// read once.
	ours map[string]func() (string, error)
}

func newCgroupPIDs(root, proc string) cgroupPIDs {
	ours := map[string]func() (string, error){}
	for _, kind := range []string{"pid", "net"} {
		ours[kind] = sync.OnceValues(func() (string, error) { return os.Readlink(filepath.Join(proc, "self", "ns", kind)) })
	}
	return cgroupPIDs{root: root, proc: proc, hit: new(atomic.Int32), ours: ours}
}

// netPID returns the host pid of a process in the network namespace of the
// running container id, which is what reading its routes needs: its only
// process, or its first when all of them share one network namespace (then
// its init's), else its init. The first two cost a readlink per process;
// finding the init costs a /proc/<pid>/status each, several times dearer,
// and a guest with a shell and a child is the common case.
func (c cgroupPIDs) netPID(id string) (int, error) {
	pids, dir, err := c.procs(id)
	if err != nil {
		return 0, err
	}
	switch {
	case len(pids) == 1 && c.notOurs(pids[0], "pid"):
		// One process, in a pid namespace of its own: the init, whose
		// exit would have ended the container.
		return pids[0], nil
	case len(pids) > 1 && c.shareNetNamespace(pids):
		return pids[0], nil
	}
	return c.findInit(id, dir, pids)
}

// procs lists the processes in the cgroup of container id, and the cgroup,
// or errPIDUnknown when no layout has it.
func (c cgroupPIDs) procs(id string) ([]int, string, error) {
	if id == "" || strings.ContainsAny(id, "/.") {
		return nil, "", errPIDUnknown
	}
	first := int(c.hit.Load())
	for i := range cgroupLayouts {
		n := (first + i) % len(cgroupLayouts)
		dir := filepath.Join(c.root, fmt.Sprintf(cgroupLayouts[n], id))
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("read processes of container %.12s: %w", id, err)
		}
		c.hit.Store(int32(n))
		var pids []int
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids, dir, nil
	}
	return nil, "", errPIDUnknown
}

// findInit returns the one of pids that is pid 1 of its own pid namespace.
func (c cgroupPIDs) findInit(id, dir string, pids []int) (int, error) {
	for _, pid := range pids {
		if c.isNamespaceInit(pid) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("container %.12s has no init process in %s", id, dir)
}

// shareNetNamespace reports whether every one of pids is in the same
// network namespace, and it is not this process's (a guest always has one
// of its own).
func (c cgroupPIDs) shareNetNamespace(pids []int) bool {
	var first string
	for i, pid := range pids {
		ns, other := c.namespace(pid, "net")
		if !other || (i > 0 && ns != first) {
			return false
		}
		first = ns
	}
	return true
}

// namespace returns pid's namespace of kind ("pid", "net") and whether it
// is known and not this process's.
func (c cgroupPIDs) namespace(pid int, kind string) (string, bool) {
	ours, err := c.ours[kind]()
	if err != nil {
		return "", false
	}
	theirs, err := os.Readlink(filepath.Join(c.proc, strconv.Itoa(pid), "ns", kind))
	return theirs, err == nil && theirs != ours
}

// notOurs reports whether pid's namespace of kind is known and not this
// process's.
func (c cgroupPIDs) notOurs(pid int, kind string) bool {
	_, other := c.namespace(pid, kind)
	return other
}

// isNamespaceInit reports whether pid is pid 1 of its own pid namespace:
// the last field of NSpid in its status.
func (c cgroupPIDs) isNamespaceInit(pid int) bool {
	b, err := os.ReadFile(filepath.Join(c.proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}
