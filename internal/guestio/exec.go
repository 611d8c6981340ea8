package guestio

import "io"

// Size is a terminal's size in character cells.
type Size struct {
	Height, Width uint
}

// Exec is one command to run in a guest.
type Exec struct {
	// Cmd is the argv; Cmd[0] is looked up on the guest's PATH.
	Cmd []string
	// Env is KEY=VALUE pairs added to the guest's environment. The values
	// are secrets: drivers never log them or put them on a command line.
	Env []string
	// Dir is the working directory in the guest; empty means the guest's.
	Dir string
	// TTY asks for a terminal: output then comes back as one stream, on
	// Stdout, and Resize carries the local terminal's size changes.
	TTY bool
	// Stdin, when set, is copied to the command until it ends, then the
	// command's stdin is closed. Nil gives the command no stdin.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output.
	Stdout, Stderr io.Writer
	// Size is the terminal's size at the start (TTY only; zero: unknown).
	Size Size
	// Resize delivers later sizes (TTY only); nil when there are none.
	Resize <-chan Size
}
