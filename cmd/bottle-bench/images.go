package main

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet/sidecar"
)

// findBundleImage returns the newest bundle image bottle-reconcile built:
// the warm-up made sure the current binary's is there.
func findBundleImage(ctx context.Context, w *world) (string, error) {
	imgs, err := w.docker.ImageList(ctx, image.ListOptions{
		Filters: filters.NewArgs(filters.Arg("reference", sidecar.ImageRepo+":*")),
	})
	if err != nil {
		return "", fmt.Errorf("list %s images: %w", sidecar.ImageRepo, err)
	}
	best, created := "", int64(-1)
	for _, im := range imgs {
		for _, t := range im.RepoTags {
			if im.Created > created {
				best, created = t, im.Created
			}
		}
	}
	if best == "" {
		return "", fmt.Errorf("no %s image: the warm-up should have built one", sidecar.ImageRepo)
	}
	return best, nil
}

// checkAgentImage fails early, and says how to fix it, when the agent
// image is missing: no contender could start a guest.
func checkAgentImage(ctx context.Context, w *world) error {
	_, err := w.docker.ImageInspect(ctx, agentImage)
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("image %s is missing: run scripts/bench, which builds it as scripts/demo does", agentImage)
	}
	if err != nil {
		return fmt.Errorf("inspect image %s: %w", agentImage, err)
	}
	return nil
}
