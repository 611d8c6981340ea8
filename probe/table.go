package probe

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// Render prints a report as a table: probe, expected, observed, verdict
// and time, then a summary line.
func Render(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROBE\tEXPECTED\tOBSERVED\tVERDICT\tMS")
	failed, slow := 0, 0
	for _, x := range r.Results {
		v := x.Verdict
		switch {
		case v != Pass:
			failed++
			v = "FAIL"
		case x.Slow:
			slow++
			v = "pass (slow)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Name, x.Expected, clip(x.Observed, 60), v, strconv.FormatInt(x.Millis, 10))
	}
	tw.Flush()
	for _, x := range r.Results {
		if x.Verdict != Pass && x.Detail != "" {
			fmt.Fprintf(w, "%s %s: %s\n", x.ID, x.Name, clip(x.Detail, 300))
		}
	}
	if slow > 0 {
		fmt.Fprintf(w, "%d block(s) held only by a timeout, not a refusal (marked slow)\n", slow)
	}
	if failed == 0 {
		fmt.Fprintf(w, "bottle %s held: %d probe(s) passed in %s (%s)\n", r.Bottle, len(r.Results), ms(r.Millis), r.Guest)
		return
	}
	fmt.Fprintf(w, "bottle %s LEAKS: %d of %d probe(s) failed in %s (%s)\n", r.Bottle, failed, len(r.Results), ms(r.Millis), r.Guest)
}

func ms(n int64) string { return strconv.FormatFloat(float64(n)/1000, 'f', 1, 64) + "s" }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
