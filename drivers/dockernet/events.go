package dockernet

import (
	"context"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
)

// eventsAPI is the part of the Docker client the event watcher uses.
type eventsAPI interface {
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// Events reports out-of-band changes to an instance's containers and
// networks from the Docker event stream, so the reconciler heals a removed,
// dead or unhealthy bundle at once rather than at the next resync.
type Events struct {
	api eventsAPI
	log logr.Logger
	// retryBase and retryMax bound the reconnect backoff.
	retryBase, retryMax time.Duration
}

// NewEvents returns an event source; api is usually a *client.Client.
func NewEvents(api eventsAPI, log logr.Logger) *Events {
	return &Events{api: api, log: log.WithName("dockernet-events"), retryBase: time.Second, retryMax: 20 * time.Second}
}

// containerActions are the container events that can mean drift. Not
// "kill" and "stop": a kill that ends a container is followed by its "die",
// and "stop" comes after the "die"; a pass on a kill finds the container
// still running (Docker's list answers only once the kill is done), and at
// scale it delays the pass that heals (a docker rm -f is kill, die,
// destroy, hundreds of milliseconds apart at 250 bottles).
var containerActions = []string{"die", "destroy", "oom", "pause", "health_status"}

// A container's "start" starts no pass (the reconciler's own creates and
// starts make most of them); it only tells the watcher that a container
// whose die it heard of runs again.
const actionStart = "start"

// WatchEvents implements reconciler.EventSource. When the stream breaks
// (e.g. the daemon restarts) it reconnects with backoff and reports bottle
// "", since events may have been missed meanwhile.
func (e *Events) WatchEvents(ctx context.Context, instance string, notify func(bottle.Event)) {
	delay := e.retryBase
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := e.stream(ctx, instance, notify, attempt > 0)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > e.retryMax {
			delay = e.retryBase // it was up for a while: a new failure starts over
		}
		e.log.Error(err, "docker event stream broke; reconnecting", "retryIn", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, e.retryMax)
	}
}

// stream follows two subscriptions until one fails: our containers, by
// label, and bottle networks, by type, since network events carry no labels
// to filter on (a disconnected bundle loses its pinned address).
func (e *Events) stream(ctx context.Context, instance string, notify func(bottle.Event), reconnected bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cf := filters.NewArgs(
		filters.Arg("label", bottle.LabelManagedBy+"="+bottle.ManagedByValue),
		filters.Arg("label", bottle.LabelInstance+"="+instance),
		filters.Arg("type", string(events.ContainerEventType)),
	)
	for _, a := range containerActions {
		cf.Add("event", a)
	}
	cf.Add("event", actionStart)
	nf := filters.NewArgs(
		filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("event", string(events.ActionDisconnect)),
		filters.Arg("event", string(events.ActionDestroy)),
	)
	cmsgs, cerrs := e.api.Events(ctx, events.ListOptions{Filters: cf})
	nmsgs, nerrs := e.api.Events(ctx, events.ListOptions{Filters: nf})
	if reconnected {
		notify(bottle.Event{Reason: "docker events reconnected"})
	}
	var owners containerOwners
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-cerrs:
			return err
		case err := <-nerrs:
			return err
		case m := <-cmsgs:
			ev := containerEvent(m)
			owners.learn(m, ev.Bottle)
			e.log.V(1).Info("container event", "bottle", ev.Bottle, "action", string(m.Action))
			notify(ev)
		case m := <-nmsgs:
			if b, ok := bottleOfNetwork(m.Actor.Attributes["name"], instance); ok {
				if b == "" {
					b = owners.of(m)
				}
				e.log.V(1).Info("network event", "bottle", b, "action", string(m.Action))
				notify(bottle.Event{Bottle: b, Reason: "docker network " + string(m.Action)})
			}
		}
	}
}

// containerEvent is what a container's event tells the watcher. A die and
// a start also carry the container's new run state, which Docker's list
// shows only later (see bottle.Event).
func containerEvent(m events.Message) bottle.Event {
	action, _, _ := strings.Cut(string(m.Action), ":") // "health_status: unhealthy"
	ev := bottle.Event{Bottle: m.Actor.Attributes[bottle.LabelBottle], Reason: "docker " + action}
	switch events.Action(action) {
	case events.ActionDie:
		ev.ID, ev.State, ev.Detail = m.Actor.ID, bottle.StateStopped, "exited"
		if code := m.Actor.Attributes["exitCode"]; code != "" {
			ev.Detail = "exited (" + code + ")"
		}
	case actionStart:
		ev.ID, ev.State, ev.Reason = m.Actor.ID, bottle.StateRunning, ""
	}
	return ev
}

// bottleOfNetwork maps a network name to the bottle it may belong to: a
// hint only, as the pass decides by labels. The egress network concerns
// every bottle of its instance.
func bottleOfNetwork(name, instance string) (string, bool) {
	switch {
	case name == dockerx.EgressNetworkName(instance):
		return "", true
	case strings.HasPrefix(name, dockerx.EgressNetworkName("")):
		return "", false // another instance's
	case strings.HasPrefix(name, bottle.Names("", bottle.RoleNetwork)):
		return strings.TrimPrefix(name, bottle.Names("", bottle.RoleNetwork)), true
	}
	return "", false
}

// containerOwners maps the IDs of containers the stream has told of to
// their bottles, from the container events' labels, until their destroy.
// A bundle's removal disconnects it from the instance's egress network,
// whose event names no bottle; the container it names died just before,
// so the disconnect concerns that bottle alone (and its pass looks at it
// alone) rather than every bottle.
type containerOwners map[string]string

func (o *containerOwners) learn(m events.Message, bottle string) {
	switch {
	case bottle == "" || m.Actor.ID == "":
	case m.Action == events.ActionDestroy:
		delete(*o, m.Actor.ID)
	default:
		if *o == nil {
			*o = containerOwners{}
		}
		(*o)[m.Actor.ID] = bottle
	}
}

// of returns the bottle of the container a network event names, or "".
func (o containerOwners) of(m events.Message) string {
	return o[m.Actor.Attributes["container"]]
}
