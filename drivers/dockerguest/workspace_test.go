package dockerguest

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/mount"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw/hostfwtest"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// The workspace is the guest's only mount, rprivate, read-only when asked;
// the rest of the hardened host config is TestContainerSetup's.
func TestWorkspaceMount(t *testing.T) {
	bind := &mount.BindOptions{Propagation: mount.PropagationRPrivate}
	tests := []struct {
		name string
		ws   *spec.Workspace
		want []mount.Mount
	}{
		{"none", nil, nil},
		{"read-write", &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work"},
			[]mount.Mount{{Type: mount.TypeBind, Source: "/srv/w", Target: "/work", BindOptions: bind}}},
		{"read-only", &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work", ReadOnly: true},
			[]mount.Mount{{Type: mount.TypeBind, Source: "/srv/w", Target: "/work", ReadOnly: true, BindOptions: bind}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
			d := newFakeDriver(t, api, ipt)
			w := testWant("inst", "alice", subnet)
			w.Guest.Workspace = tt.ws
			if _, err := d.Create(context.Background(), w); err != nil {
				t.Fatal(err)
			}
			if hc := api.lastHost; !reflect.DeepEqual(hc.Mounts, tt.want) || len(hc.Binds) != 0 {
				t.Errorf("mounts %+v binds %q, want %+v", hc.Mounts, hc.Binds, tt.want)
			}
		})
	}

	// A workspace that did not come through the loader is still refused
	// when its shape is wrong, before anything is made.
	api, ipt := newFakeDocker("guest:test"), hostfwtest.New(hostfwtest.DockerOnly)
	d := newFakeDriver(t, api, ipt)
	w := testWant("inst", "alice", subnet)
	w.Guest.Workspace = &spec.Workspace{HostPath: "/", GuestPath: "/work"}
	if _, err := d.Create(context.Background(), w); !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "workspace host path") {
		t.Errorf("create with / as workspace: %v", err)
	}
	if len(api.containers) != 0 {
		t.Errorf("refused create made %d containers", len(api.containers))
	}
}

// On the real daemon: a file written on the host is in the guest, the
// guest's writes reach the host, and a read-only workspace refuses them.
func TestWorkspaceOnDocker(t *testing.T) {
	cli := requireDocker(t)
	inst := newInstance(t, cli)
	img := buildTestImage(t, cli, inst)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bottle := "w" + inst[len(inst)-6:]
	netName, subnet := testNetwork(ctx, t, cli, inst, bottle)
	d, err := New(cli, Options{}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "from-host"), []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, ro := range []bool{false, true} {
		w := testWant(inst, bottle, subnet)
		w.Guest.Image, w.Network, w.Name = img, netName, d.NameFor(bottle)
		w.Guest.Daemons = []string{"egress"}
		w.Guest.Workspace = &spec.Workspace{HostPath: dir, GuestPath: "/work", ReadOnly: ro}
		r, err := d.Create(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if out, code := guestExec(ctx, t, cli, r.ID, "cat", "/work/from-host"); code != 0 || out != "hello from the host\n" {
			t.Errorf("read-only %v: guest reads %q (exit %d), want the host's file", ro, out, code)
		}
		out, code := guestExec(ctx, t, cli, r.ID, "sh", "-c", "echo from the guest > /work/from-guest")
		got, readErr := os.ReadFile(filepath.Join(dir, "from-guest"))
		switch {
		case !ro && (code != 0 || string(got) != "from the guest\n"):
			t.Errorf("read-write: guest write exit %d %q; host reads %q, %v", code, out, got, readErr)
		case ro && (code == 0 || !strings.Contains(out, "Read-only file system") || readErr == nil):
			t.Errorf("read-only: guest write exit %d %q; host reads %q, %v", code, out, got, readErr)
		}
		c, err := cli.ContainerInspect(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Mounts) != 1 || c.Mounts[0].Type != mount.TypeBind || c.Mounts[0].Source != dir || c.Mounts[0].Destination != "/work" ||
			c.Mounts[0].RW == ro || c.Mounts[0].Propagation != mount.PropagationRPrivate {
			t.Errorf("read-only %v: mounts %+v", ro, c.Mounts)
		}
		if err := d.Delete(ctx, r); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "from-guest"))
	}
}
