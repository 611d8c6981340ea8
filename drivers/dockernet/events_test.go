package dockernet

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/go-logr/logr/testr"
)

func TestEventsReportOwnContainersOnly(t *testing.T) {
	cli := requireDocker(t)
	inst, other := newInstance(t, cli), newInstance(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Any image will do: the containers are never started.
	img := "bottle-reconcile-events-test:" + inst
	dockertest.BuildBusyboxImage(t, cli, img, map[string]string{testLabel: inst})
	t.Cleanup(func() { dockertest.RemoveImage(t, cli, img) })
	got := make(chan [2]string, 10)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewEvents(cli, testr.New(t)).WatchEvents(wctx, inst, func(ev bottle.Event) { got <- [2]string{ev.Bottle, ev.Reason} })
	}()
	defer func() { stop(); <-done }()
	time.Sleep(200 * time.Millisecond) // let the subscription reach the daemon

	// Another instance's container comes and goes first: it must not show.
	for _, c := range []struct{ inst, bottle string }{{other, "theirs"}, {inst, "ours"}} {
		labels := dockertest.WantLabels(c.inst, c.bottle, bottle.RoleBundle)
		resp, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: labels}, nil, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ev := <-got:
		if ev != [2]string{"ours", "docker destroy"} {
			t.Fatalf("event = %q, want our bottle's destroy", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for our container")
	}
}

func TestBottleOfNetwork(t *testing.T) {
	tests := []struct {
		name, bottle string
		ok           bool
	}{
		{"bottle-alice", "alice", true},
		{"bottle-egress-i1", "", true},
		{"bottle-egress-i2", "", false},
		{"bridge", "", false},
	}
	for _, tt := range tests {
		b, ok := bottleOfNetwork(tt.name, "i1")
		if b != tt.bottle || ok != tt.ok {
			t.Errorf("bottleOfNetwork(%q) = %q, %v; want %q, %v", tt.name, b, ok, tt.bottle, tt.ok)
		}
	}
}

// flakyEvents is an eventsAPI whose first subscription breaks at once, as
// when the daemon restarts, and whose later ones deliver one event.
type flakyEvents struct {
	mu    sync.Mutex
	calls int
}

func (f *flakyEvents) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	msgs, errs := make(chan events.Message, 1), make(chan error, 1)
	isContainers := opts.Filters.ExactMatch("type", string(events.ContainerEventType))
	switch {
	case n <= 2 && isContainers:
		errs <- errors.New("unexpected EOF") // the daemon went away
	case n > 2 && isContainers:
		msgs <- events.Message{Action: events.ActionDie, Actor: events.Actor{Attributes: map[string]string{bottle.LabelBottle: "a"}}}
	}
	return msgs, errs
}

func TestEventsReconnect(t *testing.T) {
	api := &flakyEvents{}
	e := NewEvents(api, testr.New(t))
	e.retryBase = 10 * time.Millisecond
	got := make(chan [2]string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.WatchEvents(ctx, "i1", func(ev bottle.Event) { got <- [2]string{ev.Bottle, ev.Reason} })
	}()
	defer func() { cancel(); <-done }()
	for _, want := range [][2]string{{"", "docker events reconnected"}, {"a", "docker die"}} {
		select {
		case ev := <-got:
			if ev != want {
				t.Fatalf("event = %q, want %q", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q after the stream broke", want)
		}
	}
}

// A docker rm -f of a running container is kill, die, destroy. The kill
// changes nothing a pass could see (Docker lists the container as running
// until the kill is done) and would only delay the pass that heals, so it
// is not reported; the die and the destroy are. The start and the die also
// carry the container's new run state, and the start starts no pass.
func TestEventsSkipKill(t *testing.T) {
	cli := requireDocker(t)
	inst := newInstance(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img := "bottle-reconcile-events-test:" + inst
	dockertest.BuildBusyboxImage(t, cli, img, map[string]string{testLabel: inst})
	t.Cleanup(func() { dockertest.RemoveImage(t, cli, img) })
	got := make(chan bottle.Event, 10)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewEvents(cli, testr.New(t)).WatchEvents(wctx, inst, func(ev bottle.Event) { got <- ev })
	}()
	defer func() { stop(); <-done }()
	time.Sleep(200 * time.Millisecond) // let the subscription reach the daemon

	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: dockertest.WantLabels(inst, "b", bottle.RoleBundle)},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	var seen []bottle.Event
	for {
		select {
		case ev := <-got:
			seen = append(seen, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("events %+v, want a docker destroy at the end", seen)
		}
		if seen[len(seen)-1].Reason == "docker destroy" {
			break
		}
	}
	want := []bottle.Event{
		{Bottle: "b", ID: resp.ID, State: bottle.StateRunning},
		{Bottle: "b", Reason: "docker die", ID: resp.ID, State: bottle.StateStopped, Detail: "exited (137)"},
		{Bottle: "b", Reason: "docker destroy"},
	}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("events\n%+v\nwant\n%+v", seen, want)
	}
}

func TestContainerEvent(t *testing.T) {
	msg := func(action, code string) events.Message {
		attrs := map[string]string{bottle.LabelBottle: "b"}
		if code != "" {
			attrs["exitCode"] = code
		}
		return events.Message{Action: events.Action(action), Actor: events.Actor{ID: "c1", Attributes: attrs}}
	}
	tests := []struct {
		msg  events.Message
		want bottle.Event
	}{
		{msg("die", "1"), bottle.Event{Bottle: "b", Reason: "docker die", ID: "c1", State: bottle.StateStopped, Detail: "exited (1)"}},
		{msg("die", ""), bottle.Event{Bottle: "b", Reason: "docker die", ID: "c1", State: bottle.StateStopped, Detail: "exited"}},
		{msg("start", ""), bottle.Event{Bottle: "b", ID: "c1", State: bottle.StateRunning}},
		{msg("health_status: unhealthy", ""), bottle.Event{Bottle: "b", Reason: "docker health_status"}},
		{msg("destroy", ""), bottle.Event{Bottle: "b", Reason: "docker destroy"}},
	}
	for _, tt := range tests {
		if got := containerEvent(tt.msg); got != tt.want {
			t.Errorf("containerEvent(%s) = %+v, want %+v", tt.msg.Action, got, tt.want)
		}
	}
}

// scriptedEvents is an eventsAPI that delivers msgs in order, each on the
// stream of its type, one at a time: an unbuffered send returns only once
// the watcher has taken it. The watcher subscribes to containers first.
type scriptedEvents struct {
	msgs                 []events.Message
	containers, networks chan events.Message
}

func (s *scriptedEvents) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	ch := make(chan events.Message)
	if opts.Filters.ExactMatch("type", string(events.ContainerEventType)) {
		s.containers = ch
	} else {
		s.networks = ch
		go func() {
			for _, m := range s.msgs {
				out := s.networks
				if m.Type == events.ContainerEventType {
					out = s.containers
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return ch, make(chan error)
}

// A bundle's removal disconnects it from the instance's egress network, an
// event that names no bottle: it is the bottle of the container it names,
// which the container's own events told, until that container's destroy.
func TestEventsEgressDisconnectNamesItsBottle(t *testing.T) {
	ctr := func(action events.Action, id string) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: id, Attributes: map[string]string{bottle.LabelBottle: "a"}}}
	}
	disconnect := func(network, id string) events.Message {
		return events.Message{Type: events.NetworkEventType, Action: events.ActionDisconnect, Actor: events.Actor{Attributes: map[string]string{"name": network, "container": id}}}
	}
	egress := "bottle-egress-i1"
	api := &scriptedEvents{msgs: []events.Message{
		ctr(events.ActionDie, "c1"),
		disconnect(egress, "c1"),        // the dead bundle's: bottle a
		disconnect("bottle-a", "c1"),    // its bottle network's: a, by name
		disconnect(egress, "c2"),        // a container the stream never told of
		ctr(events.ActionDestroy, "c1"), // gone: forgotten
		disconnect(egress, "c1"),        // so this one concerns every bottle
		{Type: events.NetworkEventType, Action: events.ActionDestroy, Actor: events.Actor{Attributes: map[string]string{"name": egress}}},
	}}
	got := make(chan [2]string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewEvents(api, testr.New(t)).WatchEvents(ctx, "i1", func(ev bottle.Event) { got <- [2]string{ev.Bottle, ev.Reason} })
	}()
	defer func() { cancel(); <-done }()
	want := [][2]string{
		{"a", "docker die"}, {"a", "docker network disconnect"}, {"a", "docker network disconnect"},
		{"", "docker network disconnect"}, {"a", "docker destroy"}, {"", "docker network disconnect"},
		{"", "docker network destroy"},
	}
	var seen [][2]string
	for range want {
		select {
		case ev := <-got:
			seen = append(seen, ev)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %q, want %q", seen, want)
		}
	}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("events %q\nwant %q", seen, want)
	}
}
