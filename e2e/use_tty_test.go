package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyOutput collects what a pty's master reads and wakes waiters on
// every chunk.
type ptyOutput struct {
	mu   sync.Mutex
	buf  strings.Builder
	more chan struct{}
}

func (o *ptyOutput) add(b []byte) {
	o.mu.Lock()
	o.buf.Write(b)
	close(o.more)
	o.more = make(chan struct{})
	o.mu.Unlock()
}

// waitFor waits until re matches the output after offset from, and
// returns the match and the offset after it. The bound only keeps a
// broken terminal from hanging the suite.
func (o *ptyOutput) waitFor(t *testing.T, re *regexp.Regexp, from int) ([]string, int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		o.mu.Lock()
		s, more := o.buf.String(), o.more
		o.mu.Unlock()
		if loc := re.FindStringSubmatchIndex(s[from:]); loc != nil {
			m := re.FindStringSubmatch(s[from:])
			return m, from + loc[1]
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("no %v in the terminal's output:\n%q", re, s)
		}
	}
}

// TestExecTerminal runs an interactive shell in a docker guest through
// exec -it under a real pty: the shell gets a terminal of the local size,
// follows a resize of the local terminal, and its exit code is ours.
func TestExecTerminal(t *testing.T) {
	e := newEnv(t)
	e.write("t", bottleSpec{Extra: "  guest: docker\n"})
	e.mustOnce()
	name := e.name("t")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, "exec", "-it", name, "--dir", e.specs, "--", "sh")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := &ptyOutput{more: make(chan struct{})}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			if n > 0 {
				out.add(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	// stty prints the size, or an error while the terminal has none yet.
	size := regexp.MustCompile(`\r?\n(?:(\d+) (\d+)|stty: [^\r\n]*)\r?\n`)
	type_ := func(s string) {
		if _, err := ptmx.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Daemons before API 1.42 size the terminal with a resize that lands
	// just after the shell starts, so a command typed ahead can run
	// before it (stty then finds no size): ask until it has landed.
	var m []string
	at := 0
	for range 20 {
		type_("busybox stty size\r")
		if m, at = out.waitFor(t, size, at); m[1] != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m[1] != "24" || m[2] != "80" {
		t.Fatalf("the guest's terminal is %q, want the local 24x80", m[0])
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	// The resize travels SIGWINCH → bottle-reconcile → Docker; ask until
	// the guest sees it, each time waiting for the answer.
	got := ""
	for range 20 {
		type_("busybox stty size\r")
		m, at = out.waitFor(t, size, at)
		if got = m[1] + "x" + m[2]; got == "50x132" {
			break
		}
	}
	if got != "50x132" {
		t.Fatalf("the guest's terminal stayed %s after the local one became 50x132", got)
	}
	type_("exit 3\r")
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		out.mu.Lock()
		defer out.mu.Unlock()
		t.Fatalf("exec -it: %v, want exit 3\n%s", err, fmt.Sprintf("%q", out.buf.String()))
	}
}
