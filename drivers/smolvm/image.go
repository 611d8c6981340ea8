package smolvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// ImageExporter is what the driver needs from the host's Docker daemon to
// hand images to smolvm as archives: smolvm would otherwise pull a registry
// image inside the guest on its first start, through the guest's egress
// policy, which allows only the bundle. It uses no Docker client types, so
// the driver and its tests need no daemon: DockerImages adapts a
// *client.Client to it.
type ImageExporter interface {
	// Ensure makes ref present in the daemon as policy (a spec.Pull*
	// value) says, pulling it there when needed, and returns its
	// content-addressed ID ("sha256:<hex>").
	Ensure(ctx context.Context, ref, policy string) (string, error)
	// SaveImage streams the `docker save` archive of image id.
	SaveImage(ctx context.Context, id string) (io.ReadCloser, error)
}

// isLocalImage follows smolvm's src/data/image_source.rs::classify: these
// are read from the host as they are, never pulled.
func isLocalImage(ref string) bool {
	if ref == "-" || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") {
		return true
	}
	for _, suf := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(ref, suf) {
			return true
		}
	}
	return false
}

// imageIDRE is a Docker image ID; only its hex part names a cache file.
var imageIDRE = regexp.MustCompile(`^sha256:([0-9a-f]{64})$`)

// source is what `machine create --image` gets: an archive path (or a
// local source as the spec wrote it), with the archive's sha256 and size
// when the driver exported it.
type source struct {
	ref  string
	sum  string // hex sha256 of the archive file; "" when not known
	size int64
}

// resolveImage returns what to pass to `machine create --image`: always a
// local source, never a registry reference. The image is made present in
// the host's Docker daemon as pullPolicy says (the daemon's own pull, with
// the host's credentials and proxy) and exported once to the archive
// cache, named by image ID.
func (d *Driver) resolveImage(ctx context.Context, ref, policy string) (source, error) {
	if isLocalImage(ref) {
		return source{ref: ref}, nil
	}
	if d.opts.Images == nil {
		return source{}, fmt.Errorf("image %q: no Docker image source configured (Options.Images), and smolvm would pull it inside the guest, where its egress policy denies the registry: %w",
			ref, cerrdefs.ErrFailedPrecondition)
	}
	id, err := d.opts.Images.Ensure(ctx, ref, policy)
	if err != nil {
		return source{}, err
	}
	m := imageIDRE.FindStringSubmatch(id)
	if m == nil {
		return source{}, fmt.Errorf("export image %q: unexpected image ID %q", ref, id)
	}
	path := filepath.Join(d.opts.CacheDir, m[1]+".tar")
	now := d.now()
	if info, err := os.Stat(path); err == nil {
		// The mtime records the last use, which is what pruning ages by.
		if err := os.Chtimes(path, now, now); err != nil {
			return source{}, fmt.Errorf("reuse image archive %s: %w", path, err)
		}
		sum, err := archiveSum(path)
		if err != nil {
			return source{}, fmt.Errorf("reuse image archive %s: %w", path, err)
		}
		return source{ref: path, sum: sum, size: info.Size()}, nil
	}
	src, err := d.export(ctx, id, path)
	if err != nil {
		return source{}, fmt.Errorf("export image %q: %w", ref, err)
	}
	d.log.V(1).Info("exported docker image", "image", ref, "archive", path, "sha256", src.sum, "bytes", src.size)
	return src, nil
}
