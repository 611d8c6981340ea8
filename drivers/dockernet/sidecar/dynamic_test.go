package sidecar

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/elfdeps"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// TestBundleFromDynamicBinary builds bottle-reconcile as `go install` does
// by default (cgo, dynamically linked) and checks that a bundle made from
// it starts and reports ready.
func TestBundleFromDynamicBinary(t *testing.T) {
	cli := requireDocker(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler: a cgo build is not possible here")
	}
	ctx := testContext(t)
	bin := filepath.Join(t.TempDir(), "bottle-reconcile")
	if err := buildBinaryEnv(bin, "CGO_ENABLED=1"); err != nil {
		t.Fatal(err)
	}
	if deps, err := elfdeps.Deps(bin); err != nil || len(deps) == 0 {
		t.Fatalf("the cgo build is not dynamically linked (%d deps, %v): the test would prove nothing", len(deps), err)
	}
	ic, err := newImageContext(bin)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := ic.tag()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	opts := testOptions("10.215.77.0/24")
	opts.BundleBinary = bin
	nd, bd := newDrivers(t, cli, opts)
	inst := newInstance(t, cli)
	n, b, err := bottleUp(ctx, t, nd, bd, inst, inst, spec.Spec{Daemons: []string{spec.DaemonEgress, spec.DaemonDNS}})
	if err != nil {
		t.Fatalf("bundle from a dynamic binary: %v", err)
	}
	if b.State != bottle.StateRunning {
		t.Errorf("bundle state %s, want running", b.State)
	}
	if err := bd.Delete(ctx, b); err != nil {
		t.Error(err)
	}
	if err := nd.Delete(ctx, n); err != nil {
		t.Error(err)
	}
}
