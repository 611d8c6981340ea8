package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
)

// Exit codes shared by every command.
const (
	exitOK       = 0
	exitFail     = 1
	exitUsage    = 2
	exitLockHeld = 3
)

// parseInterspersed parses flags that may come before, between or after
// positional arguments ("validate specs/ --format json"), which the flag
// package alone does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlagSet returns a flag set that reports errors to stderr and never exits.
func newFlagSet(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if c, ok := stderr.(*flagCollector); ok {
		c.sets = append(c.sets, fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bottle-reconcile %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// prefixFlag is a flag.Value for a CIDR.
type prefixFlag struct{ p *netip.Prefix }

func (f prefixFlag) String() string {
	if f.p == nil || !f.p.IsValid() {
		return ""
	}
	return f.p.String()
}

func (f prefixFlag) Set(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("%q is not a CIDR (e.g. 10.213.0.0/16)", s)
	}
	if p.Masked() != p || !p.Addr().Is4() {
		return fmt.Errorf("%q must be an IPv4 network address like %s", s, p.Masked())
	}
	*f.p = p
	return nil
}

// The flag that lets a spec pin a subnet outside --subnet-pool, shared by
// validate and the commands that act on bottles.
const (
	outsidePoolFlag  = "allow-subnet-outside-pool"
	outsidePoolUsage = "accept a spec.network.subnet outside --subnet-pool (bundles refuse only the pool, so such a bottle is not kept from other bottles' egress gates)"
)
