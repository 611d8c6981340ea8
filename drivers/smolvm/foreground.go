package smolvm

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeForeground makes this process's group the foreground group of the
// terminal t again, after a child that had it (exec -t) is done. A
// background group changing the foreground gets SIGTTOU, hence the ignore.
func takeForeground(t *os.File) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(int(t.Fd()), unix.TIOCSPGRP, syscall.Getpgrp())
}
