package sidecar

import (
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func TestDeleteGone(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	_, bd := newDrivers(t, cli, testOptions(""))
	gone := bottle.Resource{Name: "bottle-never-was-here", ID: strings.Repeat("ab", 32)}
	if err := bd.Delete(ctx, gone); err != nil {
		t.Errorf("Delete(gone) = %v", err)
	}
	if err := bd.RemoveEgressNetwork(ctx, "test-never-was-here"); err != nil {
		t.Errorf("RemoveEgressNetwork(gone) = %v", err)
	}
}

func TestObserveCallCount(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	api := &countingAPI{dockerAPI: cli}
	_, bd := newDrivers(t, api, testOptions(""))
	api.Snapshot()
	if _, err := bd.Observe(ctx); err != nil {
		t.Fatal(err)
	}
	if got := api.Snapshot(); len(got) != 1 || got["ContainerList"] != 1 {
		t.Errorf("Observe() made calls %v, want one ContainerList", got)
	}
}

// A daemon that does not answer is an unavailable error from every
// operation, Delete included: never nil, so the reconciler can neither take
// it for "nothing exists" nor for "already gone".
func TestDaemonDown(t *testing.T) {
	for _, tt := range []struct{ name, host string }{
		{"missing socket", "unix:///nonexistent/docker.sock"},
		{"unreachable DOCKER_HOST", "tcp://127.0.0.1:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.host)
			cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx := testContext(t)
			_, bd := newDrivers(t, cli, testOptions("10.215.9.0/24"))
			rs, err := bd.Observe(ctx)
			if rs != nil || !cerrdefs.IsUnavailable(err) {
				t.Errorf("Observe() = %v, %v; want nil and an unavailable error", rs, err)
			}
			bw := bundleWant("test-down", "test-down-a", mustPrefix("10.215.9.0/29"), spec.Spec{Daemons: []string{}})
			if _, err := bd.Create(ctx, bw); !cerrdefs.IsUnavailable(err) || !strings.Contains(err.Error(), bw.Name) {
				t.Errorf("Create() = %v, want an unavailable error naming %s", err, bw.Name)
			}
			r := bottle.Resource{Name: bw.Name, ID: strings.Repeat("cd", 32)}
			if err := bd.Delete(ctx, r); !cerrdefs.IsUnavailable(err) || !strings.Contains(err.Error(), r.Name) {
				t.Errorf("Delete() = %v, want an unavailable error naming %s, not success", err, r.Name)
			}
			if err := bd.RemoveEgressNetwork(ctx, "test-down"); !cerrdefs.IsUnavailable(err) {
				t.Errorf("RemoveEgressNetwork() = %v, want an unavailable error", err)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Pool != spec.DefaultPool || o.LockPath != dockerx.DefaultLockPath || o.ReadyTimeout != DefaultReadyTimeout {
		t.Errorf("defaults = %+v", o)
	}
	if _, err := (Options{Pool: mustPrefix("10.0.0.0/30")}).withDefaults(); err == nil {
		t.Error("a /30 pool was accepted")
	}
}
