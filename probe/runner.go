package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// RunMain is the hidden `probe-run` subcommand, run inside a guest: it
// reads a Plan as JSON from its first argument, or from stdin when there is
// none or it is "-", carries it out and prints an Output as JSON. It exits
// 0 when it ran the plan, whatever the plan found; 2 on a bad plan.
func RunMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var raw []byte
	var err error
	switch {
	case len(args) > 1:
		fmt.Fprintln(stderr, "probe-run: want one argument, the plan as JSON (or none to read it from stdin)")
		return 2
	case len(args) == 1 && args[0] != "-":
		raw = []byte(args[0])
	default:
		raw, err = io.ReadAll(io.LimitReader(stdin, 4<<20))
		if err != nil {
			fmt.Fprintf(stderr, "probe-run: read plan: %v\n", err)
			return 2
		}
	}
	var p Plan
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		fmt.Fprintf(stderr, "probe-run: decode plan: %v\n", err)
		return 2
	}
	out := Output{Observations: Execute(ctx, p), UID: os.Getuid()}
	if p.RemoveSelf {
		removeSelf()
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintf(stderr, "probe-run: write results: %v\n", err)
		return 1
	}
	return 0
}
