package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"time"
)

// loggedOp is the part of a bottle-reconcile JSON log line the benchmark
// reads: the executor's "operation done" line for one resource.
type loggedOp struct {
	Msg    string `json:"msg"`
	Role   string `json:"role"`
	Action string `json:"action"`
	Took   int64  `json:"took"` // nanoseconds
}

// addLoggedOps records in t, as "ROLE ACTION", every operation that a
// bottle-reconcile JSON log (--log-format json) reports done. Other lines,
// and lines that are not JSON, are skipped.
func addLoggedOps(t *opTimer, log []byte) {
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var l loggedOp
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "operation done" || l.Role == "" || l.Action == "" {
			continue
		}
		t.add(l.Role+" "+l.Action, time.Duration(l.Took))
	}
}

// resourceOp is one operation on one resource of a bottle, as the floor
// makes it (the API calls it times) and as bottle-reconcile does it (one
// operation of its plan, with whatever it waits for and checks).
type resourceOp struct {
	Op    string   // bottle-reconcile's "ROLE ACTION"
	Floor []string // the floor's calls that make up the same work
	Adds  string   // what bottle-reconcile does beyond those calls
}

// resourceOps is the side-by-side table, in the order a bottle is made and
// torn down.
var resourceOps = []resourceOp{
	{"network create", []string{"network create"}, ""},
	{"bundle create", []string{"bundle create", "egress connect", "bundle start"}, "+ ready line"},
	{"guest create", []string{"guest create", "guest start"}, "+ host firewall rules, routes"},
	{"guest delete", []string{"guest remove"}, "+ host firewall rules"},
	{"bundle delete", []string{"bundle remove"}, ""},
	{"network delete", []string{"network remove"}, ""},
}

// opCompare is one row of the side-by-side table; a zero side was not
// measured.
type opCompare struct {
	resourceOp
	FloorMean, OursMean time.Duration
	OursCount           int
}

// compareOps pairs the floor's calls with bottle-reconcile's operations,
// per resource. A row is left out when neither side has it; the floor's
// side only when it has every call of the row.
func compareOps(floor, ours []opStat) []opCompare {
	f := map[string]opStat{}
	for _, o := range floor {
		f[o.Op] = o
	}
	r := map[string]opStat{}
	for _, o := range ours {
		r[o.Op] = o
	}
	var out []opCompare
	for _, ro := range resourceOps {
		c := opCompare{resourceOp: ro}
		for _, call := range ro.Floor {
			o, ok := f[call]
			if !ok {
				c.FloorMean = 0
				break
			}
			c.FloorMean += o.Mean
		}
		if o, ok := r[ro.Op]; ok {
			c.OursMean, c.OursCount = o.Mean, o.Count
		}
		if c.FloorMean > 0 || c.OursCount > 0 {
			out = append(out, c)
		}
	}
	return out
}
