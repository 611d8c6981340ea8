// Package cgroup2 finds the cgroup v2 hierarchy and the cgroup of a process.
package cgroup2

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Root finds where the cgroup2 hierarchy is mounted, reading mountinfo
// (normally /proc/self/mountinfo): /sys/fs/cgroup on a unified host,
// /sys/fs/cgroup/unified on a hybrid one. Only a mount of the hierarchy's
// root counts, not a bind of a cgroup below it.
func Root(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(tail) > 0 && tail[0] == "cgroup2" && fields[3] == "/" {
			return fields[4], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	return "", errors.New("no cgroup2 hierarchy is mounted (mount one, e.g. at /sys/fs/cgroup/unified)")
}

// Of returns the cgroup2 path of process pid ("/a/b", relative to the
// root), reading proc (normally /proc). A process that is gone is an error
// for which os.IsNotExist holds.
func Of(proc string, pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("process %d has no cgroup2 path", pid)
}
