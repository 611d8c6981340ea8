package smolvm

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/client"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/internal/images"
)

// dockerImageAPI is the part of the Docker client that DockerImages uses.
// *client.Client satisfies it; tests may pass a fake.
type dockerImageAPI interface {
	images.API
	ImageSave(ctx context.Context, ids []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
}

var (
	_ dockerImageAPI = (*client.Client)(nil)
	_ ImageExporter  = (*DockerImages)(nil)
)

// DockerImages is the ImageExporter for a Docker daemon, adapting a Docker
// client (github.com/docker/docker/client), typically
//
//	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
//	images := smolvm.NewDockerImages(cli, log)
//
// Pulls are the daemon's own, with the host's docker CLI credentials (see
// internal/images). The client's errors are returned wrapped, so their
// errdefs classes hold. The caller owns the client and closes it.
type DockerImages struct {
	api    dockerImageAPI
	ensure *images.Docker
}

// NewDockerImages returns a DockerImages over api, usually a *client.Client.
func NewDockerImages(api dockerImageAPI, log logr.Logger) *DockerImages {
	return &DockerImages{api: api, ensure: images.New(api, nil, log)}
}

// Ensure implements ImageExporter.
func (d *DockerImages) Ensure(ctx context.Context, ref, policy string) (string, error) {
	id, err := d.ensure.Ensure(ctx, ref, policy)
	if err != nil {
		return "", fmt.Errorf("docker: %w", err)
	}
	return id, nil
}

// SaveImage implements ImageExporter.
func (d *DockerImages) SaveImage(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, err := d.api.ImageSave(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("docker: save image %s: %w", id, err)
	}
	return rc, nil
}
