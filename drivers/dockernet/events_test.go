package dockernet

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
)

func TestEventsReportOwnContainersOnly(t *testing.T) {
	cli := requireDocker(t)
	inst, other := newInstance(t, cli), newInstance(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, bd := newDrivers(t, cli, testOptions(""))
	img, err := bd.ensureImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan [2]string, 10)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewEvents(cli, testr.New(t)).WatchEvents(wctx, inst, func(b, reason string) { got <- [2]string{b, reason} })
	}()
	defer func() { stop(); <-done }()
	time.Sleep(200 * time.Millisecond) // let the subscription reach the daemon

	// Another instance's container comes and goes first: it must not show.
	for _, c := range []struct{ inst, bottle string }{{other, "theirs"}, {inst, "ours"}} {
		labels := wantLabels(c.inst, c.bottle, reconciler.RoleBundle)
		resp, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: labels, Entrypoint: []string{binaryPath}}, nil, nil, nil, "")
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
