package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockerguest"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet/sidecar"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/smolvm"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
	"github.com/bottle-reconcile/bottle-reconcile/review"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// cmdDiff reviews a change of specs offline: what it would do, bottle by
// bottle, on any host where BASE is converged. It reads files only: no
// Docker, no smolvm, no state directory, no root.
func cmdDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", stderr, "diff [--detailed-exitcode] [-o text|json] BASE HEAD")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 when nothing changes, 2 when something does, 1 on error or an invalid HEAD spec")
	output := fs.String("o", "text", "output: text or json")
	pool := spec.DefaultPool
	fs.Var(prefixFlag{&pool}, "subnet-pool", "the range bottle subnets are allocated from, as the host's reconciler has it")
	maxDeletes := fs.Int("max-deletes", 3, "the host's --max-deletes: more bottles removed at once are held, not deleted")
	allowMass := fs.Bool("allow-mass-delete", false, "the host lifts --max-deletes")
	allowEmpty := fs.Bool("allow-empty", false, "the host lets an empty spec directory tear down every bottle")
	outside := fs.Bool(outsidePoolFlag, false, outsidePoolUsage)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 || (*output != "text" && *output != "json") || *maxDeletes < 0 {
		fs.Usage()
		return exitUsage
	}
	// Offline, as validate: a review runs far from the host, so host paths
	// (a workspace's) are not looked up.
	opts := spec.Options{Pool: pool, AllowSubnetOutsidePool: *outside, Offline: true}
	base, err := loadPaths(pos[:1], opts)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile diff: base: %v\n", err)
		return exitFail
	}
	head, err := loadPaths(pos[1:], opts)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile diff: head: %v\n", err)
		return exitFail
	}
	cfg := reconciler.Config{Dir: pos[1], Instance: "review", Pool: pool, MaxDeletes: *maxDeletes, AllowEmpty: *allowEmpty}
	if *allowMass {
		cfg.MaxDeletes = -1
	}
	p, err := reconciler.Review(base, head, hostLayout(pool), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bottle-reconcile diff: %v\n", err)
		return exitFail
	}
	bottles := review.Bottles(base, head, p.Plan)
	changed := false
	for _, b := range bottles {
		changed = changed || b.Changed()
	}
	if *output == "json" {
		out := struct {
			Base     string          `json:"base"`
			Head     string          `json:"head"`
			Changes  bool            `json:"changes"`
			Bottles  []review.Bottle `json:"bottles"`
			Problems struct {
				Base []spec.Problem `json:"base"`
				Head []spec.Problem `json:"head"`
			} `json:"problems"`
		}{Base: pos[0], Head: pos[1], Changes: changed, Bottles: bottles}
		out.Problems.Base, out.Problems.Head = orEmpty(base.Problems), orEmpty(head.Problems)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		printReview(stdout, pos[0], pos[1], base, head, bottles)
	}
	switch {
	case len(head.Problems) > 0:
		return exitFail
	case *detailed && changed:
		return 2
	}
	return exitOK
}

// hostLayout is what this binary's drivers call things, without starting
// any of them: the review must plan with the names and kinds a pass uses.
func hostLayout(pool netip.Prefix) reconciler.HostLayout {
	// NameFor reads nothing of its driver: a nil one names guests offline.
	var dg *dockerguest.Driver
	return reconciler.HostLayout{
		NetworkKind: dockernet.NetworkKind,
		BundleKind:  sidecar.Kind,
		Guests: map[string]reconciler.GuestLayout{
			spec.GuestSmolvm: {Kind: smolvm.Kind},
			spec.GuestDocker: {Kind: dockerguest.Kind, Name: dg.NameFor},
		},
		Allocate: func(taken []netip.Prefix) (netip.Prefix, error) {
			return dockernet.ChooseSubnet(pool, 29, taken)
		},
	}
}

// changeText says a review.Change in words.
var changeText = map[review.Change]string{
	review.NoChange:      "no change",
	review.Create:        "create",
	review.Delete:        "delete",
	review.ReplaceGuest:  "replace the guest only",
	review.ReplaceBundle: "replace the bundle (the guest is paused meanwhile, then resumed)",
	review.ReplaceBoth:   "replace the bundle and the guest",
	review.Recreate:      "recreate network, bundle and guest",
	review.Held:          "held (invalid)",
	review.Unknown:       "unknown",
}

func printReview(w io.Writer, baseArg, headArg string, base, head *spec.Result, bottles []review.Bottle) {
	fmt.Fprintf(w, "Review of %s -> %s: what the change does on a host where %s is converged.\n\n", baseArg, headArg, baseArg)
	counts := map[review.Change]int{}
	for _, b := range bottles {
		counts[b.Change]++
		what := changeText[b.Change]
		if what == "" {
			what = string(b.Change)
		}
		line := "bottle " + b.Name + ": " + what
		if len(b.Fields) > 0 {
			line += " (changed: " + strings.Join(b.Fields, ", ") + ")"
		}
		if b.Reason != "" {
			line += ": " + b.Reason
		}
		fmt.Fprintln(w, line)
		for _, op := range b.Ops {
			fmt.Fprintf(w, "  %s\n", op)
		}
	}
	for _, side := range []struct {
		name string
		r    *spec.Result
	}{{"base", base}, {"head", head}} {
		if len(side.r.Problems) > 0 {
			fmt.Fprintf(w, "\nProblems in the %s:\n", side.name)
			for _, pr := range side.r.Problems {
				fmt.Fprintf(w, "  %s\n", pr)
			}
		}
	}
	fmt.Fprintf(w, "\nReview: %d to create, %d to delete, %d guest(s) replaced, %d bundle(s) replaced, %d bundle(s) and guest(s) replaced, %d recreated, %d held, %d unchanged.\n",
		counts[review.Create], counts[review.Delete], counts[review.ReplaceGuest], counts[review.ReplaceBundle],
		counts[review.ReplaceBoth], counts[review.Recreate], counts[review.Held], counts[review.NoChange])
}

func orEmpty(ps []spec.Problem) []spec.Problem {
	if ps == nil {
		return []spec.Problem{}
	}
	return ps
}
