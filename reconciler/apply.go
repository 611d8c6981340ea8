package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/go-logr/logr"
)

// Executor carries out a plan. It makes no decisions: it runs each bottle's
// operations in step order (one with a later Through beside the steps up to
// it, as the plan says), stops a bottle at its first failed operation, and
// passes the subnet of a network it creates on to that bottle's later
// operations.
type Executor struct {
	// Drivers by Kind.
	Drivers map[string]Driver
	// Concurrency bounds how many bottles are worked on at once.
	Concurrency int
	Log         logr.Logger
	// Order, when set, names bottles to start first, in that order; the
	// others follow by name. A watcher puts new and changed specs here so
	// they do not wait behind a resync backlog.
	Order []string
	// Stop, when closed, starts no further operation; the ones running go
	// on under ctx. A graceful shutdown closes it before it cancels ctx.
	Stop <-chan struct{}
	// Getenv reads the host variables a guest's envFromHost names, when the
	// guest is created (resolveEnv); nil means os.LookupEnv.
	Getenv func(string) (string, bool)
}

// BottleResult is what happened to one bottle's operations.
type BottleResult struct {
	Bottle string
	Done   []Op
	// Failed is the operation that failed, Err its error; the bottle's later
	// operations were not attempted.
	Failed *Op
	Err    error
	// Created holds what the successful creates returned.
	Created []bottle.Resource
}

// Apply runs plan and returns one result per bottle that had operations.
// Bottles are independent: one failing never stops another.
func (e *Executor) Apply(ctx context.Context, plan Plan) map[string]*BottleResult {
	byBottle := map[string][]Op{}
	for _, op := range plan.Ops {
		byBottle[op.Bottle] = append(byBottle[op.Bottle], op)
	}
	names := make([]string, 0, len(byBottle))
	for n := range byBottle {
		names = append(names, n)
	}
	sort.Strings(names)
	names = prioritise(names, e.Order)

	n := e.Concurrency
	if n < 1 {
		n = 1
	}
	// Workers take bottles from one ordered list, so Order is the order
	// bottles start in (goroutines racing for a semaphore would not be).
	work := make(chan string, len(names))
	for _, name := range names {
		work <- name
	}
	close(work)
	var mu sync.Mutex
	results := map[string]*BottleResult{}
	var wg sync.WaitGroup
	for range min(n, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				var res *BottleResult
				if err := e.stopped(ctx); err != nil {
					res = &BottleResult{Bottle: name, Failed: &byBottle[name][0], Err: fmt.Errorf("not started: %w", err)}
				} else {
					res = e.bottle(ctx, name, byBottle[name])
				}
				mu.Lock()
				results[name] = res
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results
}

var errStopping = errors.New("shutting down")

// stopped says why no further operation may start, or nil.
func (e *Executor) stopped(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	select {
	case <-e.Stop:
		return errStopping
	default:
		return nil
	}
}

// prioritise moves the names listed in first to the front, in that order.
func prioritise(names, first []string) []string {
	if len(first) == 0 {
		return names
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	out := make([]string, 0, len(names))
	for _, n := range first {
		if have[n] {
			out = append(out, n)
			delete(have, n)
		}
	}
	for _, n := range names {
		if have[n] {
			out = append(out, n)
		}
	}
	return out
}

// bottle runs one bottle's operations one at a time, in step order, but
// for one whose Through is a later step: that one runs on beside the steps
// up to Through, and the step after waits for it. The first failure ends
// the bottle's work. Nothing of a bottle outlives this call.
func (e *Executor) bottle(ctx context.Context, name string, ops []Op) *BottleResult {
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Step < ops[j].Step })
	res := &BottleResult{Bottle: name}
	var spanning []*spanningOp
	// join waits for the spanning ops that must end before step s (all of
	// them when s is 0) and records how they ended.
	join := func(s int) {
		kept := spanning[:0]
		for _, sp := range spanning {
			if s != 0 && sp.op.Through >= s {
				kept = append(kept, sp)
				continue
			}
			<-sp.done
			res.record(sp.op, sp.created, sp.err)
		}
		spanning = kept
	}
	defer join(0)
	for i, op := range ops {
		if join(op.Step); res.Err != nil {
			return res
		}
		if err := e.stopped(ctx); err != nil {
			res.Failed, res.Err = &ops[i], fmt.Errorf("not started: %w", err)
			return res
		}
		if op.Through > op.Step {
			sp := &spanningOp{op: op, done: make(chan struct{})}
			go func() {
				defer close(sp.done)
				sp.created, sp.err = e.one(ctx, name, op)
			}()
			spanning = append(spanning, sp)
			continue
		}
		created, err := e.one(ctx, name, op)
		if res.record(op, created, err); err != nil {
			return res
		}
		if op.Action == ActionCreate && op.Role == bottle.RoleNetwork {
			// Later creates of this bottle learn the subnet the network got.
			for j := i + 1; j < len(ops); j++ {
				if ops[j].Want != nil && !ops[j].Want.Subnet.IsValid() {
					w := *ops[j].Want
					w.Labels = cloneLabels(w.Labels)
					w.Fill(created.Subnet)
					ops[j].Want = &w
				}
			}
		}
	}
	return res
}

// spanningOp is an op running on beside later steps (see Op.Through).
type spanningOp struct {
	op      Op
	done    chan struct{} // closed when it has ended
	created bottle.Resource
	err     error
}

// record adds how op ended: done, or the bottle's failure if it is the first.
func (res *BottleResult) record(op Op, created bottle.Resource, err error) {
	if err != nil {
		if res.Err == nil {
			res.Failed, res.Err = &op, err
		}
		return
	}
	res.Done = append(res.Done, op)
	if op.Action == ActionCreate {
		res.Created = append(res.Created, created)
	}
}

// one runs op and logs how it ended.
func (e *Executor) one(ctx context.Context, name string, op Op) (bottle.Resource, error) {
	log := e.Log.WithValues("bottle", name, "resource", op.Name, "role", string(op.Role), "action", string(op.Action), "cause", op.Cause)
	start := time.Now()
	created, err := e.run(ctx, op)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		log.Error(err, "operation failed", "took", took)
		return created, err
	}
	log.Info("operation done", "took", took)
	return created, nil
}

var errNoDriver = errors.New("no driver for this kind")

func (e *Executor) run(ctx context.Context, op Op) (bottle.Resource, error) {
	d, ok := e.Drivers[op.Kind]
	if !ok {
		return bottle.Resource{}, fmt.Errorf("%s %s %q: %w %q", op.Action, op.Role, op.Name, errNoDriver, op.Kind)
	}
	switch op.Action {
	case ActionCreate:
		if op.Role != bottle.RoleNetwork && !op.Want.Subnet.IsValid() {
			return bottle.Resource{}, fmt.Errorf("create %s %q: the bottle's subnet is not known", op.Role, op.Name)
		}
		getenv := e.Getenv
		if getenv == nil {
			getenv = os.LookupEnv
		}
		// Here, not in the plan: a plan reads no secret, and the bundle's
		// address is known by now.
		w, err := resolveEnv(*op.Want, getenv)
		if err != nil {
			return bottle.Resource{}, fmt.Errorf("create %s %q: %w", op.Role, op.Name, err)
		}
		return d.Create(ctx, w)
	case ActionDelete:
		return bottle.Resource{}, d.Delete(ctx, *op.Target)
	case ActionRepair:
		rp, ok := d.(Repairer)
		if !ok {
			return bottle.Resource{}, fmt.Errorf("repair %s %q: driver %s cannot repair", op.Role, op.Name, op.Kind)
		}
		return bottle.Resource{}, rp.Repair(ctx, *op.Target)
	case ActionStart, ActionStop:
		s, ok := d.(Starter)
		if !ok {
			return bottle.Resource{}, fmt.Errorf("%s %s %q: driver %s cannot start or stop", op.Action, op.Role, op.Name, op.Kind)
		}
		if op.Action == ActionStart {
			return bottle.Resource{}, s.Start(ctx, *op.Target)
		}
		return bottle.Resource{}, s.Stop(ctx, *op.Target)
	}
	return bottle.Resource{}, fmt.Errorf("unknown action %q", op.Action)
}

func cloneLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
