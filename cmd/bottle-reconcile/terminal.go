package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/moby/term"

	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
)

// localTerminal is the terminal an exec -t draws on: raw mode while the
// command runs (with -i, so keys such as ^C reach the guest), and its size,
// now and on every SIGWINCH.
type localTerminal struct {
	in     *os.File
	state  *term.State // to restore; nil when not made raw
	sigs   chan os.Signal
	resize chan guestio.Size
}

// openTerminal sets up out's terminal for an exec -t; raw says whether to
// make in raw. It returns nil when out is not a terminal.
func openTerminal(in, out *os.File, raw bool) (*localTerminal, error) {
	if !term.IsTerminal(out.Fd()) {
		return nil, nil
	}
	t := &localTerminal{in: in, sigs: make(chan os.Signal, 1), resize: make(chan guestio.Size, 1)}
	if raw && term.IsTerminal(in.Fd()) {
		st, err := term.SetRawTerminal(in.Fd())
		if err != nil {
			return nil, err
		}
		t.state = st
	}
	signal.Notify(t.sigs, syscall.SIGWINCH)
	go func() {
		for range t.sigs {
			if s, ok := termSize(out); ok {
				select {
				case t.resize <- s:
				default: // the last size is the one that counts
					select {
					case <-t.resize:
					default:
					}
					t.resize <- s
				}
			}
		}
	}()
	return t, nil
}

// termSize is f's terminal size.
func termSize(f *os.File) (guestio.Size, bool) {
	ws, err := term.GetWinsize(f.Fd())
	if err != nil || ws.Width == 0 {
		return guestio.Size{}, false
	}
	return guestio.Size{Height: uint(ws.Height), Width: uint(ws.Width)}, true
}

// Close stops following resizes and restores the terminal.
func (t *localTerminal) Close() {
	if t == nil {
		return
	}
	signal.Stop(t.sigs)
	close(t.sigs)
	if t.state != nil {
		_ = term.RestoreTerminal(t.in.Fd(), t.state)
	}
}
