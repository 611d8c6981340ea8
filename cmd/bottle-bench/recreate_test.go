package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeRecreate is a Docker with one container, which records the calls
// made to it.
type fakeRecreate struct {
	c       container.InspectResponse
	calls   []string
	created *network.NetworkingConfig
	cfg     *container.Config
	failOn  string
}

func (f *fakeRecreate) fail(call string) error {
	f.calls = append(f.calls, call)
	if call == f.failOn {
		return errors.New("refused")
	}
	return nil
}

func (f *fakeRecreate) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	return f.c, f.fail("inspect " + id)
}

func (f *fakeRecreate) ContainerRemove(_ context.Context, id string, opts container.RemoveOptions) error {
	return f.fail(fmt.Sprintf("remove %s force=%v", id, opts.Force))
}

func (f *fakeRecreate) ContainerCreate(_ context.Context, cfg *container.Config, _ *container.HostConfig,
	net *network.NetworkingConfig, _ *ocispec.Platform, name string) (container.CreateResponse, error) {
	f.cfg, f.created = cfg, net
	return container.CreateResponse{ID: "new"}, f.fail("create " + name)
}

func (f *fakeRecreate) NetworkConnect(_ context.Context, net, id string, cfg *network.EndpointSettings) error {
	addr := ""
	if cfg.IPAMConfig != nil {
		addr = cfg.IPAMConfig.IPv4Address
	}
	return f.fail(fmt.Sprintf("connect %s %s %q", net, id, addr))
}

func (f *fakeRecreate) ContainerStart(_ context.Context, id string, _ container.StartOptions) error {
	return f.fail("start " + id)
}

func TestRecreate(t *testing.T) {
	bundle := func() container.InspectResponse {
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{
				ID:         "old",
				HostConfig: &container.HostConfig{NetworkMode: "bottle-a"},
			},
			Config: &container.Config{Image: "bundle:1", Labels: map[string]string{"k": "v"}},
			NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
				"bottle-a": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.0.0.2"}},
				"egress":   {},
				"another":  {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "172.30.0.9"}},
			}},
		}
	}
	t.Run("same configuration, networks and addresses", func(t *testing.T) {
		f := &fakeRecreate{c: bundle()}
		ops := newOpTimer()
		if err := recreate(context.Background(), f, "b", ops, healOpPrefix); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"inspect b", "remove old force=true", "create b",
			`connect another new "172.30.0.9"`, `connect egress new ""`, "start new",
		}
		if !reflect.DeepEqual(f.calls, want) {
			t.Errorf("calls\n got %q\nwant %q", f.calls, want)
		}
		ep := f.created.EndpointsConfig
		if len(ep) != 1 || ep["bottle-a"] == nil || ep["bottle-a"].IPAMConfig.IPv4Address != "10.0.0.2" {
			t.Errorf("created on %+v, want only bottle-a at 10.0.0.2", ep)
		}
		if f.cfg.Labels["k"] != "v" || f.cfg.Image != "bundle:1" {
			t.Errorf("created with %+v, want the old configuration", f.cfg)
		}
		var names []string
		for _, o := range ops.stats() {
			names = append(names, o.Op)
		}
		wantOps := []string{"heal: rm -f", "heal: create", "heal: connect", "heal: start", healOp}
		if !reflect.DeepEqual(names, wantOps) {
			t.Errorf("ops %q, want %q", names, wantOps)
		}
	})
	for _, step := range []string{"inspect b", "remove old force=true", "create b", `connect egress new ""`, "start new"} {
		t.Run("fails at "+step, func(t *testing.T) {
			f := &fakeRecreate{c: bundle(), failOn: step}
			if err := recreate(context.Background(), f, "b", newOpTimer(), ""); err == nil {
				t.Fatalf("no error, want one from %s", step)
			}
			if f.calls[len(f.calls)-1] != step {
				t.Errorf("went on after the failed %s: %q", step, f.calls)
			}
		})
	}
}
