package smolvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/term"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
)

// Exec runs x in the machine r with `machine exec` and returns the
// command's exit code (smolvm's own failures exit 1 too, with "Error: …"
// on stderr, which the caller sees). Env values travel as `-e KEY` with the
// value in smolvm's environment, never on its command line; a name smolvm
// itself reads is refused, as spec.envFromHost refuses it. There is no
// timeout: ctx ends it, killing smolvm's process group.
func (d *Driver) Exec(ctx context.Context, r bottle.Resource, x guestio.Exec) (int, error) {
	c, err := execCall(r.Name, x)
	if err != nil {
		return -1, fmt.Errorf("smolvm: exec in machine %q: %w", r.Name, err)
	}
	res, err := d.run.run(ctx, c)
	if err != nil {
		return -1, fmt.Errorf("smolvm: exec in machine %q: %w", r.Name, err)
	}
	return res.exitCode, nil
}

// execCall is the `machine exec` call for x: -i with stdin, -t with a
// TTY (smolvm then puts the terminal in raw mode and follows its size
// itself), --stream otherwise so output shows as it comes.
func execCall(name string, x guestio.Exec) (call, error) {
	args := []string{"machine", "exec", "--name", name}
	if x.Stdin != nil {
		args = append(args, "-i")
	}
	switch {
	case x.TTY:
		args = append(args, "-t")
	case x.Stdin == nil:
		args = append(args, "--stream")
	}
	if x.Dir != "" {
		args = append(args, "-w", x.Dir)
	}
	c := call{stdin: x.Stdin, stdout: x.Stdout, stderr: x.Stderr}
	for _, kv := range x.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return call{}, fmt.Errorf("-e %q: want KEY=VALUE", k)
		}
		if hostSensitive(k) {
			return call{}, fmt.Errorf("-e %s: smolvm itself reads %s, so its value could only go on smolvm's command line; set it inside the command instead (env %s=… CMD)", k, k, k)
		}
		args = append(args, "-e", k)
		c.env = append(c.env, kv)
	}
	c.args = append(append(args, "--"), x.Cmd...)
	if f, ok := x.Stdin.(*os.File); ok && x.TTY && term.IsTerminal(f.Fd()) {
		c.terminal = f
	}
	return c, nil
}

// guestIsDir says whether p is a directory in the machine. It runs `test`
// from p's parent with a relative name, so an emulator that maps the
// working directory (and nothing else) answers for the same path.
func (d *Driver) guestIsDir(ctx context.Context, name, p string) (bool, error) {
	p = path.Clean(p)
	dir, base := path.Dir(p), path.Base(p)
	if p == "/" {
		return true, nil
	}
	res, err := d.run.run(ctx, call{args: []string{"machine", "exec", "--name", name, "-w", dir, "--", "test", "-d", base}, timeout: d.opts.Timeout})
	if err != nil {
		return false, err
	}
	return res.exitCode == 0, nil
}

// CopyTo copies the local file or directory src into the machine r at dst,
// as docker cp does (into dst when it is a directory, else as dst). A file
// goes with `machine cp`, keeping its mode; smolvm copies files only, so a
// directory goes as a tar stream to `tar -x` in the guest, which needs tar.
func (d *Driver) CopyTo(ctx context.Context, r bottle.Resource, src, dst string) error {
	op := fmt.Sprintf("smolvm: copy %s to %s:%s", src, r.Name, dst)
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	isDir, err := d.guestIsDir(ctx, r.Name, dst)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	dir, name := guestio.Place(dst, isDir, filepath.Base(src))
	if !st.IsDir() {
		if strings.Contains(src, ":") {
			// smolvm splits SRC on its first ':' (machine.rs CpCmd::run).
			return fmt.Errorf("%s: smolvm reads a source path with ':' as MACHINE:PATH; copy or link the file to a path without one", op)
		}
		args := []string{"machine", "cp", "--mode", fmt.Sprintf("%o", st.Mode().Perm()), src, r.Name + ":" + path.Join(dir, name)}
		if _, err := d.exec(ctx, call{args: args}); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(guestio.Pack(pw, src, name)) }()
	_, err = d.exec(ctx, call{args: []string{"machine", "exec", "--name", r.Name, "-i", "-w", dir, "--", "tar", "-xf", "-"}, stdin: pr})
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// CopyFrom copies the file or directory src of the machine r to the local
// dst, as docker cp does: a file with `machine cp`, a directory as a tar
// stream from `tar -c` in the guest.
func (d *Driver) CopyFrom(ctx context.Context, r bottle.Resource, src, dst string) error {
	op := fmt.Sprintf("smolvm: copy %s:%s to %s", r.Name, src, dst)
	isDir, err := d.guestIsDir(ctx, r.Name, src)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	src = path.Clean(src)
	if !isDir {
		target := dst
		if st, err := os.Stat(dst); err == nil && st.IsDir() {
			target = filepath.Join(dst, path.Base(src))
		}
		if _, err := d.exec(ctx, call{args: []string{"machine", "cp", r.Name + ":" + src, target}}); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	}
	pr, pw := io.Pipe()
	unpacked := make(chan error, 1)
	go func() {
		err := guestio.UnpackTo(pr, dst)
		_, _ = io.Copy(io.Discard, pr) // let smolvm finish writing
		unpacked <- err
	}()
	// Not --stream: the buffered exec writes raw bytes (vm_common.rs
	// print_output_and_exit), which a tar stream needs.
	_, err = d.exec(ctx, call{args: []string{"machine", "exec", "--name", r.Name, "-w", path.Dir(src), "--", "tar", "-cf", "-", path.Base(src)}, stdout: pw})
	if err != nil {
		pw.CloseWithError(err)
	} else {
		pw.Close()
	}
	if uerr := <-unpacked; err == nil && uerr != nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
