package images

import (
	"context"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr"
)

// API is the part of the Docker client Docker uses; *client.Client
// satisfies it, tests pass a fake.
type API interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImagePull(ctx context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error)
}

var _ API = (*client.Client)(nil)

// Docker makes images present in a Docker daemon. It is safe for
// concurrent use; the daemon itself joins concurrent pulls of one image.
type Docker struct {
	api   API
	creds Credentials
	log   logr.Logger
}

// New returns a Docker over api. creds nil means HostCredentials.
func New(api API, creds Credentials, log logr.Logger) *Docker {
	if creds == nil {
		creds = HostCredentials
	}
	return &Docker{api: api, creds: creds, log: log.WithName("images")}
}

// Ensure makes ref present in the daemon as policy (a spec.Pull* value, ""
// meaning missing) says and returns its image ID ("sha256:<hex>"):
//
//   - missing: pull only when the daemon does not have ref;
//   - always: pull every time, so a moved tag is picked up at create;
//   - never: use what the daemon has; a missing image is an error for
//     which cerrdefs.IsNotFound holds, and no pull is tried.
//
// A failed pull is an error naming the image and carrying the registry's
// answer as the daemon reports it.
func (d *Docker) Ensure(ctx context.Context, ref, policy string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image %q is not a valid reference: %w: %w", ref, err, cerrdefs.ErrInvalidArgument)
	}
	ins, err := d.api.ImageInspect(ctx, ref)
	local := err == nil
	if err != nil && !cerrdefs.IsNotFound(err) {
		return "", classify(fmt.Sprintf("inspect image %q", ref), err)
	}
	pull, err := wantsPull(policy, local)
	if err != nil {
		return "", err
	}
	if !pull {
		if !local {
			return "", fmt.Errorf("image %q is not in the host's Docker daemon and spec.pullPolicy is never: build, load or pull it on the host, or set pullPolicy to missing: %w",
				ref, cerrdefs.ErrNotFound)
		}
		return ins.ID, nil
	}
	// An untagged name means :latest, as for `docker pull`; the daemon's
	// API would pull every tag of the repository instead.
	if err := d.pull(ctx, reference.TagNameOnly(named)); err != nil {
		return "", err
	}
	ins, err = d.api.ImageInspect(ctx, ref)
	if err != nil {
		return "", classify(fmt.Sprintf("inspect image %q after pulling it", ref), err)
	}
	return ins.ID, nil
}

// pull runs the daemon's pull of ref and reads its progress stream to the
// end, since a pull that fails after it started reports so only there.
func (d *Docker) pull(ctx context.Context, ref reference.Named) error {
	name := ref.String()
	auth, err := d.creds(ref)
	if err != nil {
		return fmt.Errorf("pull image %q: %w", name, err)
	}
	// Never log auth: it is the encoded credentials.
	d.log.V(1).Info("pulling image through the host's Docker daemon", "image", name, "authenticated", auth != "")
	rc, err := d.api.ImagePull(ctx, name, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return classify(fmt.Sprintf("pull image %q: registry answered", name), err)
	}
	defer rc.Close()
	if err := streamError(rc); err != nil {
		return fmt.Errorf("pull image %q: registry answered: %w", name, err)
	}
	d.log.V(1).Info("pulled image", "image", name)
	return nil
}

// classify wraps err with op and marks a daemon that cannot be reached as
// unavailable, so it is never taken for a missing image.
func classify(op string, err error) error {
	if client.IsErrConnectionFailed(err) && !cerrdefs.IsUnavailable(err) {
		return fmt.Errorf("%s: %w (%w)", op, err, cerrdefs.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// errPullFailed marks a failure the daemon reported inside a pull's
// progress stream.
var errPullFailed = errors.New("pull failed")
