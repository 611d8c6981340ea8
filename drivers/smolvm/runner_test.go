package smolvm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

func TestExecRunnerResult(t *testing.T) {
	host := map[string]string{"PATH": "/usr/bin:/bin", "HOME": "/home/op", "HTTPS_PROXY": "http://leak:1", "SMOLVM_EGRESS_FLOOR": "strict"}
	r := execRunner{binary: "/bin/sh", lookup: hostEnv(host)}
	res, err := r.run(context.Background(), call{
		args:    []string{"-c", `echo "$HOME $FWD [$HTTPS_PROXY$SMOLVM_EGRESS_FLOOR]"; echo oops >&2; exit 3`},
		env:     []string{"FWD=child"},
		timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.stdout) != "/home/op child []\n" || string(res.stderr) != "oops\n" || res.exitCode != 3 {
		t.Errorf("result = %q, %q, %d", res.stdout, res.stderr, res.exitCode)
	}
}

func TestExecRunnerNotFound(t *testing.T) {
	r := execRunner{binary: filepath.Join(t.TempDir(), "no-smolvm")}
	_, err := r.run(context.Background(), call{timeout: time.Second})
	if err == nil || cerrdefs.IsDeadlineExceeded(err) {
		t.Fatalf("run = %v, want a start error", err)
	}
}

// TestExecRunnerTimeoutKillsGroup runs a "smolvm" that hangs with a child of
// its own holding stdout, as a wrapper script could: the call must end near
// its timeout, and nothing of the group may survive.
func TestExecRunnerTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := execRunner{binary: "/bin/sh"}
	start := time.Now()
	_, err := r.run(context.Background(), call{
		args:    []string{"-c", `sleep 60 & echo $$ $! > ` + pidFile + `; sleep 60`},
		timeout: 300 * time.Millisecond,
	})
	elapsed := time.Since(start)
	if !cerrdefs.IsDeadlineExceeded(err) {
		t.Fatalf("run error = %v, want a deadline", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("run took %v, want about the 300ms timeout", elapsed)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	if len(pids) != 2 {
		t.Fatalf("pid file %q", b)
	}
	// The shell led its own group; its background child is the process a
	// kill of the direct child alone would miss.
	assertGroupGone(t, pids[0])
	assertDead(t, pids[1])
}

// assertDead waits briefly for pid to be gone or a zombie.
func assertDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d survived the timeout: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertGroupGone waits briefly for process group pgid to be reaped.
func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has members (kill 0: %v)", pgid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecRunnerCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r := execRunner{binary: "/bin/sh"}
	_, err := r.run(ctx, call{args: []string{"-c", "sleep 60"}, timeout: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run error = %v, want context.Canceled", err)
	}
}
