package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

// cmdStatus prints each bottle's last recorded state. It reads the state
// directory only: no Docker, no smolvm.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("status", stderr, "status [-o text|json] [DIR]")
	c.register(fs)
	output := fs.String("o", "text", "output: text or json")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 1 || (*output != "text" && *output != "json") {
		fs.Usage()
		return exitUsage
	}
	if err := c.resolve(first(pos)); err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitUsage
	}
	sts, bad, err := reconciler.StatusStore{Dir: c.stateDir}.Read()
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
		return exitFail
	}
	for _, u := range bad {
		fmt.Fprintf(stderr, "bottle-reconcile: %s in %s cannot be read (%v); the next pass rewrites it\n", u.File, c.stateDir, u.Err)
	}
	if *output == "json" {
		if sts == nil {
			sts = []reconciler.Status{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sts)
		return exitOK
	}
	rts, err := reconciler.StatusStore{Dir: c.stateDir}.Runtimes()
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile: %v\n", err)
	}
	for _, rt := range rts {
		if rt.Error != "" {
			fmt.Fprintf(stdout, "%s: unavailable: %s\n", rt.Kind, rt.Error)
		} else {
			fmt.Fprintf(stdout, "%s: %s\n", rt.Kind, rt.Version)
		}
	}
	if len(sts) == 0 {
		fmt.Fprintf(stdout, "no bottles recorded for instance %s (state directory %s)\n", c.instance, c.stateDir)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOTTLE\tSTATE\tSUBNET\tBUNDLE\tGUEST\tLAST RECONCILED\tNEXT RETRY\tREASON")
	for _, s := range sts {
		var subnet, bundle, guest string
		for _, r := range s.Resources {
			switch r.Role {
			case bottle.RoleNetwork:
				subnet = r.Subnet
			case bottle.RoleBundle:
				bundle = strings.TrimSpace(fmt.Sprintf("%s %s %s", r.Addr, r.State, r.Health))
			case bottle.RoleGuest:
				guest = strings.TrimSpace(fmt.Sprintf("%s %s", r.Kind, r.State))
			}
		}
		next := "-"
		if s.State == reconciler.StatusBlocked {
			next = "on change"
		}
		if s.NextRetry != nil {
			next = s.NextRetry.Local().Format(time.TimeOnly)
		}
		reason := s.Reason
		if s.LastError != "" {
			reason = s.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Bottle, s.State, dash(subnet), dash(bundle), dash(guest),
			s.LastReconciled.Local().Format(time.DateTime), next, dash(reason))
	}
	tw.Flush()
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
