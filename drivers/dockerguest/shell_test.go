package dockerguest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
)

// fakeShell plays one exec: it records what was asked, answers resizes,
// and runs a scripted command on the attached stream.
type fakeShell struct {
	shellAPI    // copies are tested against the real daemon
	mu          sync.Mutex
	opts        container.ExecOptions
	resizes     []container.ResizeOptions
	resized     chan struct{} // closed at the resize number waitResizes
	waitResizes int
	exitCode    int
	// command gets the exec's stdin and writes its output; it returns
	// when the command is over.
	command func(stdin io.Reader, out io.Writer, f *fakeShell)
}

func (f *fakeShell) ContainerExecCreate(_ context.Context, _ string, o container.ExecOptions) (container.ExecCreateResponse, error) {
	f.opts = o
	return container.ExecCreateResponse{ID: "exec1"}, nil
}

func (f *fakeShell) ContainerExecAttach(context.Context, string, container.ExecAttachOptions) (types.HijackedResponse, error) {
	ours, theirs := net.Pipe()
	go func() {
		f.command(theirs, theirs, f)
		theirs.Close()
	}()
	return types.NewHijackedResponse(halfCloser{ours}, ""), nil
}

func (f *fakeShell) ContainerExecResize(_ context.Context, _ string, o container.ResizeOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resizes = append(f.resizes, o)
	if len(f.resizes) == f.waitResizes {
		close(f.resized)
	}
	return nil
}

func (f *fakeShell) ContainerExecInspect(context.Context, string) (container.ExecInspect, error) {
	return container.ExecInspect{ExitCode: f.exitCode}, nil
}

// halfCloser gives a net.Pipe end the CloseWrite a hijacked conn has.
type halfCloser struct{ net.Conn }

func (h halfCloser) CloseWrite() error { return nil }

func TestExec(t *testing.T) {
	for _, tc := range []struct {
		name       string
		x          guestio.Exec
		command    func(stdin io.Reader, out io.Writer, f *fakeShell)
		wantOut    string
		wantErr    string
		wantResize []container.ResizeOptions
	}{
		{
			name: "demuxed output, exit code",
			x:    guestio.Exec{Cmd: []string{"sh", "-c", "x"}, Env: []string{"K=secret"}, Dir: "/w"},
			command: func(_ io.Reader, out io.Writer, _ *fakeShell) {
				_, _ = stdcopy.NewStdWriter(out, stdcopy.Stdout).Write([]byte("out\n"))
				_, _ = stdcopy.NewStdWriter(out, stdcopy.Stderr).Write([]byte("err\n"))
			},
			wantOut: "out\n", wantErr: "err\n",
		},
		{
			name: "stdin reaches the command",
			x:    guestio.Exec{Cmd: []string{"cat"}, Stdin: strings.NewReader("hi\n")},
			command: func(in io.Reader, out io.Writer, _ *fakeShell) {
				line, _ := bufio.NewReader(in).ReadString('\n')
				_, _ = stdcopy.NewStdWriter(out, stdcopy.Stdout).Write([]byte(line))
			},
			wantOut: "hi\n",
		},
		{
			// The command runs until the local terminal's resize reached
			// the exec (the bound only keeps a lost resize from hanging).
			name: "tty: raw output, initial size, resizes follow",
			x:    guestio.Exec{Cmd: []string{"sh"}, TTY: true, Size: guestio.Size{Height: 24, Width: 80}},
			command: func(_ io.Reader, out io.Writer, f *fakeShell) {
				select {
				case <-f.resized:
				case <-time.After(10 * time.Second):
				}
				_, _ = out.Write([]byte("raw"))
			},
			wantOut:    "raw",
			wantResize: []container.ResizeOptions{{Height: 24, Width: 80}, {Height: 50, Width: 132}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeShell{resized: make(chan struct{}), waitResizes: len(tc.wantResize), exitCode: 3, command: tc.command}
			d := newFakeDriver(t, newFakeDocker(), nil)
			d.sh = f
			var out, errb bytes.Buffer
			tc.x.Stdout, tc.x.Stderr = &out, &errb
			if tc.x.TTY {
				resize := make(chan guestio.Size, 1)
				resize <- guestio.Size{Height: 50, Width: 132}
				tc.x.Resize = resize
			}
			code, err := d.Exec(context.Background(), bottle.Resource{Name: "g", ID: "c1"}, tc.x)
			if err != nil || code != 3 {
				t.Fatalf("Exec = %d, %v; want 3, nil", code, err)
			}
			if out.String() != tc.wantOut || errb.String() != tc.wantErr {
				t.Errorf("stdout %q stderr %q; want %q %q", out.String(), errb.String(), tc.wantOut, tc.wantErr)
			}
			o := f.opts
			if strings.Join(o.Cmd, " ") != strings.Join(tc.x.Cmd, " ") || strings.Join(o.Env, ",") != strings.Join(tc.x.Env, ",") ||
				o.WorkingDir != tc.x.Dir || o.Tty != tc.x.TTY || o.AttachStdin != (tc.x.Stdin != nil) {
				t.Errorf("exec options %+v do not match the request %+v", o, tc.x)
			}
			if tc.x.TTY && (o.ConsoleSize == nil || *o.ConsoleSize != [2]uint{24, 80}) {
				t.Errorf("console size %v, want [24 80]", o.ConsoleSize)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if fmt.Sprint(f.resizes) != fmt.Sprint(tc.wantResize) {
				t.Errorf("resizes %v, want %v", f.resizes, tc.wantResize)
			}
		})
	}
}
