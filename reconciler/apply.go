package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/go-logr/logr"
)

// Executor carries out a plan. It makes no decisions: it runs each bottle's
// operations in order, stops a bottle at its first failure, and passes the
// subnet of a network it creates on to that bottle's later operations.
type Executor struct {
	// Drivers by Kind.
	Drivers map[string]Driver
	// Concurrency bounds how many bottles are worked on at once.
	Concurrency int
	Log         logr.Logger
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
	Created []Resource
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

	n := e.Concurrency
	if n < 1 {
		n = 1
	}
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	results := map[string]*BottleResult{}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				mu.Lock()
				results[name] = &BottleResult{Bottle: name, Failed: &byBottle[name][0], Err: fmt.Errorf("not started: %w", context.Cause(ctx))}
				mu.Unlock()
				return
			}
			defer func() { <-sem }()
			res := e.bottle(ctx, name, byBottle[name])
			mu.Lock()
			results[name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

// bottle runs one bottle's operations in step order.
func (e *Executor) bottle(ctx context.Context, name string, ops []Op) *BottleResult {
	sort.Slice(ops, func(i, j int) bool { return ops[i].Step < ops[j].Step })
	res := &BottleResult{Bottle: name}
	for i := range ops {
		op := ops[i]
		if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
			res.Failed, res.Err = &op, fmt.Errorf("not started: %w", err)
			return res
		}
		log := e.Log.WithValues("bottle", name, "resource", op.Name, "role", string(op.Role), "action", string(op.Action), "cause", op.Cause)
		created, err := e.run(ctx, op)
		if err != nil {
			log.Error(err, "operation failed")
			res.Failed, res.Err = &op, err
			return res
		}
		log.Info("operation done")
		res.Done = append(res.Done, op)
		if op.Action != ActionCreate {
			continue
		}
		res.Created = append(res.Created, created)
		if op.Role == RoleNetwork {
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

var errNoDriver = errors.New("no driver for this kind")

func (e *Executor) run(ctx context.Context, op Op) (Resource, error) {
	d, ok := e.Drivers[op.Kind]
	if !ok {
		return Resource{}, fmt.Errorf("%s %s %q: %w %q", op.Action, op.Role, op.Name, errNoDriver, op.Kind)
	}
	switch op.Action {
	case ActionCreate:
		if op.Role != RoleNetwork && !op.Want.Subnet.IsValid() {
			return Resource{}, fmt.Errorf("create %s %q: the bottle's subnet is not known", op.Role, op.Name)
		}
		return d.Create(ctx, *op.Want)
	case ActionDelete:
		return Resource{}, d.Delete(ctx, *op.Target)
	case ActionRepair:
		rp, ok := d.(Repairer)
		if !ok {
			return Resource{}, fmt.Errorf("repair %s %q: driver %s cannot repair", op.Role, op.Name, op.Kind)
		}
		return Resource{}, rp.Repair(ctx, *op.Target)
	case ActionStart, ActionStop:
		s, ok := d.(Starter)
		if !ok {
			return Resource{}, fmt.Errorf("%s %s %q: driver %s cannot start or stop", op.Action, op.Role, op.Name, op.Kind)
		}
		if op.Action == ActionStart {
			return Resource{}, s.Start(ctx, *op.Target)
		}
		return Resource{}, s.Stop(ctx, *op.Target)
	}
	return Resource{}, fmt.Errorf("unknown action %q", op.Action)
}

func cloneLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
