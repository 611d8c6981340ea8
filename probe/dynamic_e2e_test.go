package probe

import (
	"context"
	"encoding/json"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/elfdeps"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// TestRunnerFromDynamicBinary builds bottle-reconcile as `go install` does
// by default (cgo, dynamically linked) and runs its probe runner in a
// docker guest made from the FROM scratch busybox image, which has no libc:
// the binary alone cannot start there, installed with its loader it runs
// the plan and then removes its whole directory.
func TestRunnerFromDynamicBinary(t *testing.T) {
	cli := dockerOrSkip(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler: a cgo build is not possible here")
	}
	id := NewToken()[:6]
	instance, tag := "probe-dyn-"+id, "bottle-probe-guest:dyn"+id
	cleanupInstance(t, cli, instance, tag)
	t.Cleanup(func() { cleanupInstance(t, cli, instance, tag) })
	bin := buildBinaryEnv(t, filepath.Join(t.TempDir(), "bottle-reconcile"), "CGO_ENABLED=1")
	if deps, err := elfdeps.Deps(bin); err != nil || len(deps) == 0 {
		t.Fatalf("the cgo build is not dynamically linked (%d deps, %v): the test would prove nothing", len(deps), err)
	}
	buildGuestImage(t, cli, tag, instance)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Root in the guest, so the runner may remove what the copy made
	// (it arrives root's, in a sticky /tmp).
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: tag, User: "0:0",
		Labels: map[string]string{bottle.LabelInstance: instance}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "bottle-probe-dyn-"+id)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, guests := drivers(t, cli)
	g := driverGuest{d: guests, r: bottle.Resource{ID: c.ID, Name: "bottle-probe-dyn-" + id}, kind: spec.GuestDocker}

	// The control: the binary alone finds no loader in this guest.
	if err := guests.CopyTo(ctx, g.r, bin, "/tmp/alone"); err != nil {
		t.Fatal(err)
	}
	if out, err := g.run(ctx, []string{"/tmp/alone", "probe-run", `{"checks":[]}`}); err == nil {
		t.Fatalf("the dynamic binary ran alone in a guest without libc (%q): the test would prove nothing", out)
	}

	argv, err := g.install(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 4 || path.Base(argv[0]) != loaderName {
		t.Fatalf("installed as %q, want the runner run through its loader", argv)
	}
	plan, err := json.Marshal(Plan{RemoveSelf: true, Checks: []Check{
		{ID: "1.1", Kind: KindFiles, Expect: Blocked, Paths: []string{"/bin/busybox"}},
		{ID: "1.2", Kind: KindMounts, Expect: Blocked},
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := g.run(ctx, append(argv, "probe-run", string(plan)))
	if err != nil {
		t.Fatalf("the runner through its loader: %v", err)
	}
	var res Output
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("runner output %q: %v", out, err)
	}
	if len(res.Observations) != 2 || !res.Observations[0].Reached || res.Observations[1].Reached || res.UID != 0 {
		t.Errorf("runner output %+v; want /bin/busybox present, no host mount, uid 0", res)
	}
	dir := path.Dir(argv[0])
	if _, err := g.run(ctx, []string{"/bin/busybox", "ls", dir}); err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Errorf("the install directory %s after RemoveSelf: %v, want it gone", dir, err)
	}
}
