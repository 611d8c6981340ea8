package sidecar

import (
	"fmt"
	"sync"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/docker/docker/api/types/container"
)

// Two removals of one running container at once, as a reconciler killed
// mid-teardown and its successor make: both succeed, whichever of them
// Docker answers with "removal ... is already in progress".
func TestRemoveContainerTwiceAtOnce(t *testing.T) {
	cli := requireDocker(t)
	ctx := testContext(t)
	inst := newInstance(t, cli)
	_, bd := newDrivers(t, cli, testOptions("10.215.8.0/24"))
	image, err := bd.ensureImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		resp, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"bundle", "run"},
			Env: []string{"BOTTLE_BUNDLE_CONFIG={\"bottle\":\"x\",\"daemons\":[]}"}, Labels: map[string]string{testLabel: inst}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, fmt.Sprintf("%s-rm-%d", inst, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j := range errs {
			wg.Go(func() { errs[j] = dockerx.RemoveContainer(ctx, cli, resp.ID) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("round %d: dockerx.RemoveContainer: %v", i, err)
			}
		}
		if _, err := cli.ContainerInspect(ctx, resp.ID); err == nil {
			t.Errorf("round %d: the container is still there", i)
		}
	}
	assertNoneLeft(t, cli, inst)
}
