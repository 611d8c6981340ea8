package dockerguest

import (
	"context"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// A docker guest whose image only a registry on 127.0.0.1 has: the
// driver's image step pulls it through the daemon and the guest runs. A
// missing image fails naming it and the registry's answer; pullPolicy never
// fails without a pull.
func TestGuestFromRegistry(t *testing.T) {
	cli := requireDocker(t)
	inst := newInstance(t, cli)
	img := buildTestImage(t, cli, inst)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bottleName := "r" + inst[len(inst)-6:]
	netName, subnet := testNetwork(ctx, t, cli, inst, bottleName)
	// The stand-in bundle runs from the local image before it is pushed
	// away: the daemon keeps its layers, but not the name the guest uses.
	standIn(ctx, t, cli, inst, img, netName, "bundle-"+bottleName, bottle.BundleAddr(subnet))
	ref := dockertest.Registry(t) + "/bottle-test/guest:" + inst
	dockertest.PushAway(t, cli, img, ref)

	d, err := New(cli, Options{}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	w := testWant(inst, bottleName, subnet)
	w.Guest.Image, w.Network, w.Name = ref, netName, d.NameFor(bottleName)
	w.Guest.Daemons = []string{"egress"}

	never := w
	never.Guest.PullPolicy = spec.PullNever
	if _, err := d.Create(ctx, never); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "spec.pullPolicy is never") {
		t.Errorf("create with pullPolicy never and no local image: %v", err)
	}
	if _, err := cli.ImageInspect(ctx, ref); !cerrdefs.IsNotFound(err) {
		t.Errorf("pullPolicy never pulled %s (inspect: %v)", ref, err)
	}

	missing := w
	missing.Guest.Image = ref + "-absent"
	t.Cleanup(func() { dockertest.RemoveImage(t, cli, missing.Guest.Image) })
	if _, err := d.Create(ctx, missing); err == nil || !strings.Contains(err.Error(), `pull image "`+missing.Guest.Image+`": registry answered: `) ||
		!strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("create from a missing image: %v; want the image and the registry's answer", err)
	}

	w.Guest.PullPolicy = spec.PullMissing
	r, err := d.Create(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cli.ContainerInspect(ctx, r.ID)
	if err != nil || !c.State.Running || c.Config.Image != ref {
		t.Errorf("guest from %s: running=%v image=%q (%v)", ref, c.State != nil && c.State.Running, c.Config.Image, err)
	}
	if err := d.Delete(ctx, r); err != nil {
		t.Error(err)
	}
}
