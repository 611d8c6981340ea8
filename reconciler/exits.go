package reconciler

import (
	"sync"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// exits remembers the resources an event source said have just stopped
// running, until the next pass takes them.
//
// Docker sends a container's "die" before its list says so: it releases the
// container's network endpoints first (hundreds of milliseconds at a few
// hundred bottles) and only then updates what it lists. A pass started by
// the die would see the container running and plan nothing, and the heal
// would wait for the pass after it. The die is a fact about that container
// ID, newer than what the list says, so the pass that follows it counts the
// container as stopped. A start of the same ID after it (someone ran docker
// start) cancels the fact.
type exits struct {
	mu  sync.Mutex
	ids map[string]exit // by runtime ID
}

// exit is what a stop event said of one resource.
type exit struct {
	bottle string
	detail string // e.g. "exited (137)"
}

// record keeps what ev says of a resource's run state, if anything.
func (x *exits) record(ev bottle.Event) {
	if ev.ID == "" || ev.State == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if ev.State != bottle.StateStopped {
		delete(x.ids, ev.ID)
		return
	}
	if x.ids == nil {
		x.ids = map[string]exit{}
	}
	x.ids[ev.ID] = exit{bottle: ev.Bottle, detail: ev.Detail}
}

// take returns the stopped resources recorded so far, by runtime ID, and
// forgets them: a pass that starts after an event lists after it, so one
// pass is enough. A pass scoped to one bottle takes that bottle's alone.
func (x *exits) take(scope string) map[string]string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out map[string]string
	for id, e := range x.ids {
		if scope != "" && e.bottle != scope {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[id] = e.detail
		delete(x.ids, id)
	}
	return out
}

// markExited sets every resource that stopped, by the events, but is
// listed as running to stopped, with what the event said.
func markExited(rs []bottle.Resource, stopped map[string]string) {
	if len(stopped) == 0 {
		return
	}
	for i := range rs {
		detail, ok := stopped[rs[i].ID]
		if !ok || rs[i].ID == "" || rs[i].State != bottle.StateRunning {
			continue
		}
		rs[i].State, rs[i].Health = bottle.StateStopped, bottle.HealthNone
		rs[i].Detail = "stopped"
		if detail != "" {
			rs[i].Detail = detail
		}
	}
}
