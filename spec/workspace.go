package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Workspace is a host directory mounted into the guest.
type Workspace struct {
	// HostPath is an absolute directory on the reconciler's host.
	HostPath string `json:"hostPath"`
	// GuestPath is where the guest sees it: absolute, not "/".
	GuestPath string `json:"guestPath"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// CheckPaths checks the shape of both paths (absolute, not /, no ':'), for
// drivers to refuse a workspace that did not come through the loader.
func (w *Workspace) CheckPaths() error {
	if why := badPath(w.HostPath); why != "" {
		return fmt.Errorf("workspace host path %q %s", w.HostPath, why)
	}
	if why := badPath(w.GuestPath); why != "" {
		return fmt.Errorf("workspace guest path %q %s", w.GuestPath, why)
	}
	return nil
}

// refusedHostPaths may never be a workspace, nor be inside one: each gives
// the guest the host (or the reconciler, or another bottle) through a
// file. The second half is smolvm's own list (CONTRACT.md, `-v`), so a
// spec valid here is not refused by smolvm later.
var refusedHostPaths = []struct{ path, why string }{
	{"/var/run/docker.sock", "is the Docker socket (root on the host)"},
	{"/run/docker.sock", "is the Docker socket (root on the host)"},
	{"/run/containerd", "holds containerd's socket and state"},
	{"/var/lib/docker", "is Docker's data directory (every container's files)"},
	{"/var/lib/containerd", "is containerd's data directory"},
	{"/proc", "is the host's process table"},
	{"/sys", "is the host's kernel and device state"},
	{"/dev", "holds the host's devices"},
	{"/etc", "is the host's configuration"},
	{"/boot", "holds the host's kernels"},
	{"/var/lib/bottle-reconcile", "is where bottle-reconcile keeps its state"},
	{"/run", "holds the host's runtime sockets"},
	{"/var/run", "holds the host's runtime sockets"},
	{"/var/log", "holds the host's logs"},
	{"/usr", "holds the host's programs"},
	{"/bin", "holds the host's programs"},
	{"/sbin", "holds the host's programs"},
	{"/lib", "holds the host's libraries"},
}

// workspaceFix ends every refusal of a host path.
const workspaceFix = "mount a directory of its own, such as /srv/bottles/NAME/work"

// checkWorkspace checks what the spec alone can tell: the shape of both
// paths, and that the host path is none of the refused ones as written.
// Where it leads on the host is checkHostWorkspaces's to say.
func (c *checker) checkWorkspace(file string, w *Workspace) {
	p := path{"spec", "workspace"}
	if why := badPath(w.HostPath); why != "" {
		c.add(p.with("hostPath"), "%q %s", w.HostPath, why)
	} else {
		w.HostPath = filepath.Clean(w.HostPath)
		if why := refusedHostPath(w.HostPath, refusals(specDir(file), "", false)); why != "" {
			c.add(p.with("hostPath"), "%s %s; %s", w.HostPath, why, workspaceFix)
		}
	}
	if why := badPath(w.GuestPath); why != "" {
		c.add(p.with("guestPath"), "%q %s", w.GuestPath, why)
	} else {
		w.GuestPath = filepath.Clean(w.GuestPath)
	}
}

// badPath says what is wrong with a workspace path as written, if anything.
func badPath(s string) string {
	switch {
	case !filepath.IsAbs(s):
		return "is not an absolute path; write it from /, like /srv/bottles/alice/work"
	case filepath.Clean(s) == "/":
		return "is the whole filesystem; name a directory below /"
	case strings.ContainsAny(s, ":\x00"):
		// smolvm splits -v HOST:GUEST[:ro] on ':'.
		return "contains ':' or NUL, which cannot be passed to smolvm's -v HOST:GUEST; rename the directory"
	}
	return ""
}

// specDir is the absolute spec directory of file, or "" when it cannot be
// told.
func specDir(file string) string {
	d, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return ""
	}
	return d
}

// refusal is a path no workspace may be, be inside or hold, and what it is.
type refusal struct{ path, what string }

// refusals lists them: the fixed ones, the spec directory and the state
// directory; with resolve, also each as its symlinks lead on this host
// (/var/run is often /run, /lib is /usr/lib on a merged-usr host).
func refusals(specDir, stateDir string, resolve bool) []refusal {
	var out []refusal
	add := func(p, what string) {
		out = append(out, refusal{p, what})
		if !resolve {
			return
		}
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			out = append(out, refusal{real, real + " (" + what + ")"})
		}
	}
	for _, r := range refusedHostPaths {
		add(r.path, r.path+", which "+r.why)
	}
	if specDir != "" {
		add(filepath.Clean(specDir), "the spec directory "+specDir+" (the guest could rewrite its own spec)")
	}
	if stateDir != "" {
		add(filepath.Clean(stateDir), "the state directory "+stateDir+" (the reconciler's lock and status)")
	}
	return out
}

// refusedHostPath says why host path h (clean, absolute) may not be a
// workspace; empty when it may.
func refusedHostPath(h string, rs []refusal) string {
	if h == "/" {
		return "is the whole filesystem"
	}
	for _, r := range rs {
		switch {
		case h == r.path:
			return "is " + r.what
		case pathWithin(h, r.path):
			return "is inside " + r.what
		case pathWithin(r.path, h):
			return "holds " + r.what
		}
	}
	return ""
}

// pathWithin reports whether p is strictly below dir (both clean, absolute).
func pathWithin(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

// checkHostWorkspaces checks, on the reconciler's host, every workspace
// host path the file checks passed: that it exists, is a directory, and that
// neither it nor where its symlinks lead is refused. It runs on every load,
// not from the cache: a directory can go away while its spec stays the
// same. Bottles that fail are held as they are, like any invalid file; the
// rest are returned. With Options.Offline nothing is looked up, and what
// was not checked is listed in Result.Unchecked instead.
func checkHostWorkspaces(r *Result, bottles []*Bottle, opts Options) []*Bottle {
	var kept []*Bottle
	for _, b := range bottles {
		w := b.Spec.Workspace
		if w == nil {
			kept = append(kept, b)
			continue
		}
		if opts.Offline {
			r.Unchecked = append(r.Unchecked, workspaceProblem(b, fmt.Sprintf(
				"not checked here: whether %s exists on the reconciler's host, is a directory, and where its symlinks lead; the reconciler checks that where it runs, and holds the bottle if not", w.HostPath)))
			kept = append(kept, b)
			continue
		}
		if why := hostWorkspace(w.HostPath, specDir(b.Source), opts.StateDir); why != "" {
			r.Problems = append(r.Problems, workspaceProblem(b, why))
			r.Held[b.Metadata.Name] = fmt.Sprintf("%s is invalid", b.Source)
			continue
		}
		kept = append(kept, b)
	}
	return kept
}

// workspaceProblem points at b's spec.workspace.hostPath.
func workspaceProblem(b *Bottle, msg string) Problem {
	doc := b.doc
	if doc == nil {
		doc = docOf(b.Source)
	}
	p := path{"spec", "workspace", "hostPath"}
	line, col := locate(doc, p, false)
	return Problem{File: b.Source, Line: line, Column: col, Field: p.String(), Message: msg}
}

// hostWorkspace says what is wrong with host path h on this host.
func hostWorkspace(h, specDir, stateDir string) string {
	real, err := filepath.EvalSymlinks(h)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("%s does not exist on this host; create the directory (mkdir -p %s) or fix the path", h, h)
		}
		return fmt.Sprintf("%s cannot be resolved on this host (%v); fix the path or its permissions", h, unwrapPath(err))
	}
	st, err := os.Stat(real)
	if err != nil {
		return fmt.Sprintf("%s cannot be read on this host (%v); fix the path or its permissions", h, unwrapPath(err))
	}
	if !st.IsDir() {
		return fmt.Sprintf("%s is not a directory; a workspace is a directory (smolvm mounts only directories)", h)
	}
	rs := refusals(specDir, stateDir, true)
	if why := refusedHostPath(h, rs); why != "" {
		return fmt.Sprintf("%s %s; %s", h, why, workspaceFix)
	}
	if why := refusedHostPath(real, rs); why != "" {
		return fmt.Sprintf("%s leads to %s, which %s; %s", h, real, why, workspaceFix)
	}
	return ""
}
