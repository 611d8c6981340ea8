package smolvm

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// dockerImageAPI is the part of the Docker client that DockerImages uses.
// *client.Client satisfies it; tests may pass a fake.
type dockerImageAPI interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
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
//	images := smolvm.NewDockerImages(cli)
//
// The client's errors are returned wrapped, so their errdefs classes hold:
// cerrdefs.IsNotFound for an image the daemon does not have. The caller owns
// the client and closes it.
type DockerImages struct {
	API dockerImageAPI
}

// NewDockerImages returns a DockerImages over api, usually a *client.Client.
func NewDockerImages(api dockerImageAPI) *DockerImages {
	return &DockerImages{API: api}
}

// ImageID implements ImageExporter.
func (d *DockerImages) ImageID(ctx context.Context, ref string) (string, error) {
	ins, err := d.API.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("docker: inspect image %q: %w", ref, err)
	}
	return ins.ID, nil
}

// SaveImage implements ImageExporter.
func (d *DockerImages) SaveImage(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, err := d.API.ImageSave(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("docker: save image %s: %w", id, err)
	}
	return rc, nil
}
