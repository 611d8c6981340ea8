package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// cmdCp copies files and directories between the host and a bottle's
// guest: `cp SRC NAME:DST` or `cp NAME:SRC DST`.
func cmdCp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("cp", stderr, "cp [--dir DIR] SRC NAME:DST | NAME:SRC DST")
	c.register(fs)
	dir := fs.String("dir", "specs", "the spec directory holding the bottle's spec")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "bottle-reconcile cp: want SRC and DST, got %d arguments\n", len(pos))
		fs.Usage()
		return exitUsage
	}
	srcName, srcPath, srcIn := guestRef(pos[0])
	dstName, dstPath, dstIn := guestRef(pos[1])
	if srcIn == dstIn {
		fmt.Fprintln(stderr, "bottle-reconcile cp: exactly one of SRC and DST must be NAME:PATH (a local path with ':' before any '/' can be written ./PATH)")
		return exitUsage
	}
	name, guestPath := dstName, dstPath
	if srcIn {
		name, guestPath = srcName, srcPath
	}
	if !strings.HasPrefix(guestPath, "/") {
		fmt.Fprintf(stderr, "bottle-reconcile cp: %s:%s: the guest path must be absolute\n", name, guestPath)
		return exitUsage
	}
	e, code := c.open(*dir, stderr, exitExecFailed)
	if e == nil {
		return code
	}
	defer e.Close()
	sh, g, err := c.findGuest(ctx, e, name)
	if err == nil {
		if srcIn {
			err = sh.CopyFrom(ctx, g, srcPath, pos[1])
		} else {
			err = sh.CopyTo(ctx, g, pos[0], dstPath)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile cp: %v\n", err)
		return exitExecFailed
	}
	return exitOK
}

// guestRef splits NAME:PATH, as docker cp does: a ':' before any '/'
// makes the argument a guest's.
func guestRef(arg string) (name, p string, ok bool) {
	i := strings.IndexByte(arg, ':')
	if i <= 0 || strings.Contains(arg[:i], "/") {
		return "", "", false
	}
	return arg[:i], arg[i+1:], true
}
