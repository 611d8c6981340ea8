package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
)

// cmdLogs prints a bottle's bundle decisions (egress requests and DNS
// queries, allowed or denied) from the bundle container's log stream.
func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("logs", stderr, "logs NAME [-f] [--since DURATION] [-o text|json] [--dir DIR]")
	c.register(fs)
	dir := fs.String("dir", "specs", "the spec directory the bottle's reconciler reads (it names the instance)")
	follow := fs.Bool("f", false, "follow: print decisions as the bundle makes them, until interrupted")
	since := fs.Duration("since", 0, "only decisions of the last DURATION (e.g. 10m; 0: all the bundle kept)")
	output := fs.String("o", "text", "output: text (time, verdict, daemon, target, reason) or json (one decision per line)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 || (*output != "text" && *output != "json") || *since < 0 {
		fs.Usage()
		return exitUsage
	}
	name := pos[0]
	e, code := c.open(*dir, stderr, exitFail)
	if e == nil {
		return code
	}
	defer e.Close()
	b, err := c.findBundle(ctx, e, name)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile logs: %v\n", err)
		return exitFail
	}
	opts := container.LogsOptions{ShowStderr: true, Follow: *follow}
	if *since > 0 {
		opts.Since = strconv.FormatInt(time.Now().Add(-*since).Unix(), 10)
	}
	rc, err := e.docker.ContainerLogs(ctx, b.ID, opts)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile logs: read the log of %s: %v\n", b.Name, err)
		return exitFail
	}
	defer rc.Close()
	// The stream is multiplexed (the bundle has no TTY); decisions are
	// on stderr, one JSON line each.
	pr, pw := io.Pipe()
	go func() { _, err := stdcopy.StdCopy(io.Discard, pw, rc); pw.CloseWithError(err) }()
	err = printDecisions(pr, stdout, *output == "json")
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		fmt.Fprintf(stderr, "bottle-reconcile logs: read the log of %s: %v\n", b.Name, err)
		return exitFail
	}
	return exitOK
}

// findBundle finds bottle name's bundle of this instance through the
// bundle driver's observation. A stopped bundle still has its log.
func (c *common) findBundle(ctx context.Context, e *env, name string) (bottle.Resource, error) {
	rs, err := e.bundle.Observe(ctx)
	if err != nil {
		return bottle.Resource{}, err
	}
	for _, r := range rs {
		if r.Bottle == name && r.Instance == c.instance {
			return r, nil
		}
	}
	return bottle.Resource{}, fmt.Errorf("%w: bottle %q has no bundle container of instance %s (check the name, --dir and --instance; bottle-reconcile status lists the bottles)",
		errNoBottle, name, c.instance)
}

// printDecisions copies the decision lines of a bundle's log from r to w,
// as text or as JSON lines; the bundle's other lines (its ready line, its
// own log) are left out.
func printDecisions(r io.Reader, w io.Writer, asJSON bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var d audit.Decision
		if json.Unmarshal(sc.Bytes(), &d) != nil || d.Verdict == "" || d.Daemon == "" {
			continue
		}
		if asJSON {
			b, _ := json.Marshal(d)
			if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintln(w, decisionText(d)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// decisionText is one decision for people: time, verdict, daemon, what
// was asked for, and why.
func decisionText(d audit.Decision) string {
	target := d.Target
	if d.Method != "" {
		target = d.Method + " " + target
	}
	reason := d.Reason
	if d.Repeated > 0 {
		reason += fmt.Sprintf(" (and %d more like it)", d.Repeated)
	}
	return fmt.Sprintf("%s  %-5s  %-6s  %-40s  %s", d.Time.Local().Format("2006-01-02 15:04:05.000"), d.Verdict, d.Daemon, target, reason)
}
