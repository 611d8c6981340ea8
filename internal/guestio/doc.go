// Package guestio holds what the CLI's exec and cp hand to a guest driver:
// an exec request (command, stdio, TTY and its resizes) and the tar streams
// files and directories travel in, the same for docker and smolvm guests.
package guestio
