package smolvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// ImageExporter is what the driver needs from the local Docker daemon to
// hand locally built images to smolvm, which cannot read the daemon's store
// itself. It uses no Docker client types, so the driver and its tests need
// no daemon: DockerImages adapts a *client.Client to it.
type ImageExporter interface {
	// ImageID returns the content-addressed ID ("sha256:<hex>") of the image
	// ref names, or an error for which cerrdefs.IsNotFound holds when the
	// daemon has no such image.
	ImageID(ctx context.Context, ref string) (string, error)
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

// resolveImage returns what to pass to `machine create --image`. An image in
// the local Docker daemon is exported to the archive cache, because smolvm
// would otherwise try to pull the name from a registry; anything else goes
// to smolvm as written.
func (d *Driver) resolveImage(ctx context.Context, ref string) (string, error) {
	if isLocalImage(ref) || d.opts.Images == nil {
		return ref, nil
	}
	id, err := d.opts.Images.ImageID(ctx, ref)
	switch {
	case cerrdefs.IsNotFound(err):
		return ref, nil
	case err != nil:
		// Docker is optional for smolvm guests: without it, registry
		// references still work.
		d.log.V(1).Info("docker image lookup failed, passing image reference to smolvm", "image", ref, "err", err.Error())
		return ref, nil
	}
	m := imageIDRE.FindStringSubmatch(id)
	if m == nil {
		return "", fmt.Errorf("smolvm: export image %q: unexpected image ID %q", ref, id)
	}
	path := filepath.Join(d.opts.CacheDir, m[1]+".tar")
	now := d.now()
	if _, err := os.Stat(path); err == nil {
		// The mtime records the last use, which is what pruning ages by.
		if err := os.Chtimes(path, now, now); err != nil {
			return "", fmt.Errorf("smolvm: reuse image archive %s: %w", path, err)
		}
		return path, nil
	}
	if err := d.export(ctx, id, path); err != nil {
		return "", fmt.Errorf("smolvm: export image %q: %w", ref, err)
	}
	d.log.V(1).Info("exported docker image", "image", ref, "archive", path)
	return path, nil
}

// export writes `docker save ID` to path through a temp file and a rename,
// so a reader never sees a partial archive under the final name. Saving by
// ID keeps the archive's content a function of its name.
func (d *Driver) export(ctx context.Context, id, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	rc, err := d.opts.Images.SaveImage(ctx, id)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".export-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, rc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// pruneCache removes cached archives that no machine uses and that were last
// used longer than CacheMaxAge ago. It runs after each create, from the
// listing Create already made, so it costs no extra smolvm call; the age
// floor keeps an archive that a create in flight is about to use. Failures
// are logged, never returned: a full cache must not fail a create.
func (d *Driver) pruneCache(inUse map[string]bool) {
	if d.opts.Images == nil || d.opts.CacheMaxAge < 0 {
		return
	}
	entries, err := os.ReadDir(d.opts.CacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Error(err, "list image archive cache", "dir", d.opts.CacheDir)
		return
	}
	cutoff := d.now().Add(-d.opts.CacheMaxAge)
	for _, e := range entries {
		name := e.Name()
		isArchive := strings.HasSuffix(name, ".tar")
		isTemp := strings.HasPrefix(name, ".export-") && strings.HasSuffix(name, ".tmp")
		if !isArchive && !isTemp {
			continue
		}
		path := filepath.Join(d.opts.CacheDir, name)
		if inUse[path] {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Error(err, "remove unused image archive", "archive", path)
			continue
		}
		d.log.V(1).Info("removed unused image archive", "archive", path)
	}
}

// imagesInUse collects the --image values of every listed machine, ours or
// not, since a cached archive may back any of them.
func imagesInUse(byName map[string]machine) map[string]bool {
	out := map[string]bool{}
	for _, m := range byName {
		if m.Image != nil {
			out[*m.Image] = true
		}
	}
	return out
}
