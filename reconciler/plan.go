package reconciler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// Action is what an operation does to a resource.
type Action string

// Actions, each one call to a driver.
const (
	ActionCreate Action = "create"
	ActionDelete Action = "delete"
	ActionStart  Action = "start"
	ActionStop   Action = "stop"
	ActionRepair Action = "repair"
)

// Op is one operation of a plan. Ops of one bottle run one at a time, in
// Step order, but for one whose Through is set; bottles run independently.
type Op struct {
	Bottle string `json:"bottle"`
	Step   int    `json:"step"`
	// Through, when after Step, is the last step this op may still be
	// running in: it runs beside the steps after its own up to Through, and
	// the step after Through waits for it. A guest frozen while a dead
	// bundle is removed and made again runs beside both.
	Through int         `json:"through,omitempty"`
	Action  Action      `json:"action"`
	Role    bottle.Role `json:"role"`
	Kind    string      `json:"kind"`
	Name    string      `json:"name"`
	Cause   string      `json:"cause"`
	Reason  Reason      `json:"reason"`
	// Details are shown in plans: subnet, address, image, daemons. Never an
	// env value.
	Details map[string]string `json:"details,omitempty"`

	Target *bottle.Resource `json:"-"` // what delete, start and stop act on
	Want   *bottle.Want     `json:"-"` // what create makes
}

// Plan is the outcome of Diff: what to do, and what was left alone and why.
type Plan struct {
	Ops   []Op   `json:"ops"`
	Notes []Note `json:"notes"`
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Ops) == 0 }

// Bottles returns the names of bottles with operations, sorted.
func (p Plan) Bottles() []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range p.Ops {
		if !seen[op.Bottle] {
			seen[op.Bottle] = true
			out = append(out, op.Bottle)
		}
	}
	sort.Strings(out)
	return out
}

// Count returns how many operations of each action the plan holds.
func (p Plan) Count() map[Action]int {
	c := map[Action]int{}
	for _, op := range p.Ops {
		c[op.Action]++
	}
	return c
}

var symbols = map[Action]string{ActionCreate: "+", ActionDelete: "-", ActionStart: ">", ActionStop: ".", ActionRepair: "~"}

// String renders the plan for people, one line per operation, in the order
// it will run:
//
//	bottle alice
//	  + network  bottle-alice         network missing   subnet=10.213.0.0/29
//
// It is stable for equal plans, so tests compare it as text.
func (p Plan) String() string {
	var b strings.Builder
	last := ""
	var spans []Op // this bottle's ops running on beside later steps
	for _, op := range p.Ops {
		if op.Bottle != last {
			fmt.Fprintf(&b, "bottle %s\n", op.Bottle)
			last, spans = op.Bottle, nil
		}
		with := ""
		for _, sp := range spans {
			if op.Step > sp.Step && op.Step <= sp.Through {
				with += fmt.Sprintf(" [at once with the %s above]", sp.Action)
			}
		}
		if op.Through > op.Step {
			spans = append(spans, op)
		}
		fmt.Fprintf(&b, "  %s%s\n", op, with)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "bottle %s: %s: %s\n", n.Bottle, n.Kind, n.Message)
	}
	c := p.Count()
	fmt.Fprintf(&b, "Plan: %d to create, %d to delete, %d to start, %d to stop", c[ActionCreate], c[ActionDelete], c[ActionStart], c[ActionStop])
	if c[ActionRepair] > 0 {
		fmt.Fprintf(&b, ", %d to repair", c[ActionRepair])
	}
	b.WriteString(".\n")
	return b.String()
}

// String renders the operation as one line of a plan, e.g.
// "+ create  network  bottle-alice (network missing) subnet=10.213.0.0/29".
func (op Op) String() string {
	return fmt.Sprintf("%s %-7s %-8s %s (%s)%s", symbols[op.Action], op.Action, op.Role, op.Name, op.Cause, details(op.Details))
}

func details(d map[string]string) string {
	if len(d) == 0 {
		return ""
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, d[k])
	}
	return b.String()
}
