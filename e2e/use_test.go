package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runIn runs the binary with stdin.
func (e *env) runIn(stdin string, sub string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, sub, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	r := result{code: -1, stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	return r
}

// writeTree makes a small directory tree under root/name and returns its
// path: a file, an executable in a subdirectory.
func writeTree(t *testing.T, root, name string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	for p, c := range map[string]string{"a.txt": "alpha\n", "sub/run.sh": "#!/bin/sh\necho ran\n"} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// useBottle checks exec and cp on a converged bottle whose guest runs
// busybox commands through sh (bb is how a command is spelled there).
func useBottle(t *testing.T, e *env, name, bb string) {
	dir := []string{"--dir", e.specs}
	t.Run("exit code", func(t *testing.T) {
		r := e.run("exec", append([]string{name}, append(dir, "--", "sh", "-c", "echo out; echo err >&2; exit 7")...)...)
		if r.code != 7 || strings.TrimSpace(r.stdout) != "out" || !strings.Contains(r.stderr, "err") {
			t.Fatalf("want exit 7, out on stdout, err on stderr\n%s", r)
		}
	})
	t.Run("env and workdir", func(t *testing.T) {
		secret := "s3cr3t-" + randHex(4)
		r := e.run("exec", append([]string{name, "-e", "USE_SECRET=" + secret, "-w", "/tmp"}, append(dir, "--", "sh", "-c", `echo "$USE_SECRET"; pwd`)...)...)
		// The emulator's /tmp is a directory of its rootfs stand-in.
		if r.code != 0 || !strings.HasPrefix(r.stdout, secret+"\n") || !strings.HasSuffix(r.stdout, "/tmp\n") {
			t.Fatalf("want the value and /tmp\n%s", r)
		}
		if strings.Contains(r.stderr, secret) {
			t.Errorf("the -e value is in bottle-reconcile's output:\n%s", r.stderr)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		r := e.runIn("hello from stdin\n", "exec", append([]string{name, "-i"}, append(dir, "--", "sh", "-c", bb+"cat")...)...)
		if r.code != 0 || r.stdout != "hello from stdin\n" {
			t.Fatalf("want stdin echoed\n%s", r)
		}
	})
	t.Run("cp file and directory both ways", func(t *testing.T) {
		local := t.TempDir()
		tree := writeTree(t, local, "tree")
		if r := e.run("cp", append(dir, tree, name+":/tmp/")...); r.code != 0 {
			t.Fatalf("cp dir in\n%s", r)
		}
		if r := e.run("cp", append(dir, filepath.Join(tree, "a.txt"), name+":/tmp/b.txt")...); r.code != 0 {
			t.Fatalf("cp file in\n%s", r)
		}
		// Relative to -w: the emulator maps only the working directory.
		r := e.run("exec", append([]string{name, "-w", "/tmp"}, append(dir, "--", "sh", "-c", bb+"cat tree/a.txt b.txt; ./tree/sub/run.sh")...)...)
		if r.code != 0 || r.stdout != "alpha\nalpha\nran\n" {
			t.Fatalf("the copies in the guest\n%s", r)
		}
		back := filepath.Join(local, "back")
		if r := e.run("cp", append(dir, name+":/tmp/tree", back)...); r.code != 0 {
			t.Fatalf("cp dir out\n%s", r)
		}
		if r := e.run("cp", append(dir, name+":/tmp/b.txt", local)...); r.code != 0 {
			t.Fatalf("cp file out\n%s", r)
		}
		for p, want := range map[string]string{"back/a.txt": "alpha\n", "back/sub/run.sh": "#!/bin/sh\necho ran\n", "b.txt": "alpha\n"} {
			got, err := os.ReadFile(filepath.Join(local, p))
			if err != nil || string(got) != want {
				t.Errorf("%s: %q, %v; want %q", p, got, err, want)
			}
		}
		if st, err := os.Stat(filepath.Join(back, "sub", "run.sh")); err != nil || st.Mode().Perm()&0o100 == 0 {
			t.Errorf("run.sh lost its mode: %v, %v", st, err)
		}
	})
	t.Run("missing bottle", func(t *testing.T) {
		for _, sub := range []string{"exec", "cp"} {
			args := append([]string{"nosuch"}, append(dir, "--", "true")...)
			if sub == "cp" {
				args = append(dir, "nosuch:/tmp/x", t.TempDir())
			}
			r := e.run(sub, args...)
			if r.code != 125 || !strings.Contains(r.stderr, `no bottle "nosuch"`) {
				t.Errorf("%s: want exit 125 saying there is no such bottle\n%s", sub, r)
			}
		}
		if r := e.run("logs", append([]string{"nosuch"}, dir...)...); r.code != 1 || !strings.Contains(r.stderr, `bottle "nosuch" has no bundle`) {
			t.Errorf("logs: want exit 1 saying there is no such bundle\n%s", r)
		}
	})
}

func TestUseDockerGuest(t *testing.T) {
	e := newEnv(t)
	e.write("u", bottleSpec{Extra: "  guest: docker\n  egress:\n    allow: [allowed.example.com]\n"})
	e.mustOnce()
	name := e.name("u")
	useBottle(t, e, name, "busybox ")

	t.Run("tty", func(t *testing.T) {
		// Docker gives the command a terminal even when ours is a pipe.
		r := e.run("exec", name, "-t", "--dir", e.specs, "--", "busybox", "tty")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "/dev/pts/") {
			t.Fatalf("want a pts\n%s", r)
		}
	})
	t.Run("logs follow a denied request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := e.command(ctx, "logs", name, "-f", "--dir", e.specs)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		target := "denied-" + randHex(3) + ".example.com"
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		r := e.run("exec", name, "--dir", e.specs, "--", "busybox", "wget", "-q", "-O-", "http://"+target+"/")
		if r.code == 0 {
			t.Fatalf("the request to %s went through\n%s", target, r)
		}
		asked := time.Now()
		// Waits on the stream; the bound only keeps a broken follow from
		// hanging the suite.
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("logs -f ended before the denial showed; stderr:\n%s", errb.String())
				}
				if strings.Contains(l, target) && strings.Contains(l, "deny") {
					t.Logf("denial shown %v after the request returned: %s", time.Since(asked), l)
					return
				}
			case <-deadline:
				t.Fatalf("no denial of %s in logs -f; stderr:\n%s", target, errb.String())
			}
		}
	})
	t.Run("logs json", func(t *testing.T) {
		r := e.run("logs", name, "-o", "json", "--since", "1h", "--dir", e.specs)
		if r.code != 0 {
			t.Fatalf("logs -o json\n%s", r)
		}
		var denied int
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var d struct{ Verdict, Daemon, Target, Reason string }
			if err := json.Unmarshal([]byte(l), &d); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if d.Verdict == "deny" && strings.HasPrefix(d.Target, "denied-") && d.Reason != "" {
				denied++
			}
		}
		if denied == 0 {
			t.Errorf("no denial in logs -o json:\n%s", r.stdout)
		}
	})
	t.Run("not ready", func(t *testing.T) {
		ctx, cancel := ctxT()
		defer cancel()
		guest := "bottle-" + name + "-guest"
		if err := docker.ContainerPause(ctx, guest); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = docker.ContainerUnpause(ctx, guest) }()
		r := e.run("exec", name, "--dir", e.specs, "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "is not running (stopped, paused)") {
			t.Fatalf("want exit 125 saying the guest is not running\n%s", r)
		}
	})
}

func TestUseSmolvmGuest(t *testing.T) {
	e := newEnv(t)
	e.write("s", bottleSpec{})
	e.mustOnce()
	name := e.name("s")
	// The emulator runs commands on the host, where busybox's applets
	// are on PATH as themselves.
	useBottle(t, e, name, "")

	t.Run("not ready", func(t *testing.T) {
		if _, err := e.smolvm("machine", "stop", "--name", "bottle-"+name); err != nil {
			t.Fatal(err)
		}
		r := e.run("exec", name, "--dir", e.specs, "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "is not running (stopped)") {
			t.Fatalf("want exit 125 saying the guest is not running\n%s", r)
		}
	})
	t.Run("smolvm's own variables refused", func(t *testing.T) {
		e.mustOnce()
		r := e.run("exec", name, "-e", "PATH=/x", "--dir", e.specs, "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "smolvm itself reads PATH") || strings.Contains(r.stderr, "/x") {
			t.Fatalf("want -e PATH refused without its value\n%s", r)
		}
	})
}
