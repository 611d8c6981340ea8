package sidecar

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/bottle-reconcile/bottle-reconcile/internal/elfdeps"
)

// ImageRepo is the repository of bundle images; the tag is a content hash.
const ImageRepo = "bottle-reconcile-bundle"

// binaryPath is where the binary sits in the bundle image.
const binaryPath = "/bottle-reconcile"

// bundleDockerfile builds a bundle image with nothing but the binary in it,
// so no registry or base image is needed. The user is nobody.
const bundleDockerfile = `FROM scratch
COPY bottle-reconcile ` + binaryPath + `
USER 65534:65534
ENTRYPOINT ["` + binaryPath + `"]
CMD ["bundle", "run"]
`

// imageContext is what a bundle image is built from: the binary and, for a
// dynamically linked one (a default cgo build, as `go install` makes), the
// ELF interpreter and shared libraries it loads, read from this host and put
// in the image under rootfs/ at the paths the loader will look for them.
type imageContext struct {
	binary string         // the binary's path; read only to hash or build
	libs   []elfdeps.File // empty for a static binary
	// libDirs are the image's directories holding libs, searched first.
	libDirs []string
}

// newImageContext finds what the binary at path needs to run.
func newImageContext(path string) (imageContext, error) {
	libs, err := elfdeps.Deps(path)
	if err != nil {
		return imageContext{}, fmt.Errorf("bundle binary %s: %w", path, err)
	}
	c := imageContext{binary: path, libs: libs}
	seen := map[string]bool{}
	for _, l := range libs {
		if d := filepath.Dir(l.Path); !seen[d] {
			seen[d] = true
			c.libDirs = append(c.libDirs, d)
		}
	}
	return c, nil
}

// dockerfile returns the Dockerfile: a static binary's alone, or one that
// also copies the loader and libraries. Name lookups stay in Go's own
// resolver: the image has no NSS modules for libc's.
func (c imageContext) dockerfile() string {
	if len(c.libs) == 0 {
		return bundleDockerfile
	}
	return strings.Replace(bundleDockerfile, "COPY ", "COPY rootfs/ /\nENV LD_LIBRARY_PATH="+strings.Join(c.libDirs, ":")+" GODEBUG=netdns=go\nCOPY ", 1)
}

// tag returns the content tag of the image: a new binary, or a host
// library that changed, makes a new image. The binary streams through the
// hash: a process that only looks its image up never holds a copy of it.
func (c imageContext) tag() (string, error) {
	f, err := os.Open(c.binary)
	if err != nil {
		return "", fmt.Errorf("bundle binary: %w", err)
	}
	defer f.Close()
	return c.tagOf(f)
}

// tagOf is tag with the binary's bytes read from binary.
func (c imageContext) tagOf(binary io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, binary); err != nil {
		return "", fmt.Errorf("bundle binary %s: %w", c.binary, err)
	}
	h.Write([]byte(c.dockerfile()))
	for _, l := range c.libs {
		h.Write([]byte(l.Path))
		h.Write(l.Data)
	}
	return ImageRepo + ":" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// imageTag returns the content tag of the image built from a static binary.
func imageTag(binary []byte) string {
	tag, _ := imageContext{}.tagOf(bytes.NewReader(binary)) // a bytes.Reader cannot fail
	return tag
}

// tarball returns the tar the image is built from and the tag of exactly
// the bytes it holds, read once (the file may be replaced meanwhile).
func (c imageContext) tarball() ([]byte, string, error) {
	bin, err := os.ReadFile(c.binary)
	if err != nil {
		return nil, "", fmt.Errorf("bundle binary: %w", err)
	}
	tag, err := c.tagOf(bytes.NewReader(bin))
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(c.dockerfile())},
		{"bottle-reconcile", 0o555, bin},
	}
	for _, l := range c.libs {
		files = append(files, struct {
			name string
			mode int64
			data []byte
		}{"rootfs" + l.Path, 0o555, l.Data})
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), tag, nil
}

// Prepare implements reconciler.Preparer: it finds or builds the bundle
// image ahead of a watcher's first create, which would otherwise pay for
// hashing the binary (about 0.2 s for a 20 MB binary here), or for a build
// after an upgrade, on the path of its first heal.
func (d *Driver) Prepare(ctx context.Context) error {
	_, err := d.ensureImage(ctx)
	return err
}

// ensureImage returns the tag of the bundle image for the configured
// binary, building it only when the daemon lacks that tag (first use, or
// removed since). Builds are serialised so concurrent creates do not build
// the same image twice.
func (d *Driver) ensureImage(ctx context.Context) (string, error) {
	select {
	case d.imageSem <- struct{}{}:
		defer func() { <-d.imageSem }()
	case <-ctx.Done():
		return "", wrap("build bundle image", ctx.Err())
	}
	if d.image != "" {
		// Checked every time: someone may have removed the image (docker
		// image prune) since, and a cached tag would then fail every
		// bundle create until a restart.
		_, err := d.api.ImageInspect(ctx, d.image)
		if err == nil {
			return d.image, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", wrap(fmt.Sprintf("inspect bundle image %q", d.image), err)
		}
		d.log.Info("bundle image gone, rebuilding", "image", d.image)
		d.image = ""
	}
	path, err := d.opts.bundleBinary()
	if err != nil {
		return "", err
	}
	ic, err := newImageContext(path)
	if err != nil {
		return "", fmt.Errorf("dockernet: build bundle image: %w", err)
	}
	tag, err := ic.tag()
	if err != nil {
		return "", fmt.Errorf("dockernet: build bundle image: %w", err)
	}
	_, err = d.api.ImageInspect(ctx, tag)
	if err == nil {
		d.image = tag
		return tag, nil
	}
	if !cerrdefs.IsNotFound(err) {
		return "", wrap(fmt.Sprintf("build bundle image %q", tag), err)
	}
	tarball, tag, err := ic.tarball()
	op := fmt.Sprintf("build bundle image %q", tag)
	if err != nil {
		return "", fmt.Errorf("dockernet: %s: make context: %w", op, err)
	}
	resp, err := d.api.ImageBuild(ctx, bytes.NewReader(tarball), build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{bottle.LabelManagedBy: bottle.ManagedByValue},
	})
	if err != nil {
		return "", wrap(op, err)
	}
	defer resp.Body.Close()
	if err := readBuildOutput(resp.Body); err != nil {
		return "", wrap(op, err)
	}
	if _, err := d.api.ImageInspect(ctx, tag); err != nil {
		return "", wrap(op, err)
	}
	d.log.Info("bundle image built", "image", tag)
	d.image = tag
	d.pruneImages(ctx, tag)
	return tag, nil
}

// readBuildOutput drains the build's JSON message stream and returns the
// error it reports, if any; a build fails inside the stream, not in HTTP.
func readBuildOutput(r io.Reader) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read build output: %w", err)
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			tail = append(tail[max(0, len(tail)-4):], s)
		}
		if m.Error != "" {
			return fmt.Errorf("build failed: %s (after: %s)", m.Error, strings.Join(tail, " | "))
		}
	}
}

// staleImageAge is how long a bundle image of another binary is kept after
// it was built. Bundles created from it keep it alive anyway (the daemon
// refuses to remove an image in use); the age spares a second reconciler
// or a test run on the same host that still builds from another binary.
const staleImageAge = 24 * time.Hour

// pruneImages removes stale bundle images after a new one was built, so
// upgrades do not pile images up. It is best effort: a failure is logged.
func (d *Driver) pruneImages(ctx context.Context, current string) {
	imgs, err := d.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", ImageRepo))})
	if err != nil {
		d.log.V(1).Info("cannot list bundle images to prune", "error", err.Error())
		return
	}
	for _, id := range staleImages(imgs, current, time.Now(), staleImageAge) {
		if _, err := d.api.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: true}); err != nil {
			// In use by a bundle, or gone already: both are fine.
			d.log.V(1).Info("bundle image kept", "image", id, "reason", err.Error())
			continue
		}
		d.log.Info("stale bundle image removed", "image", id)
	}
}

// staleImages picks the bundle images to prune: those without the current
// tag, built more than maxAge before now.
func staleImages(imgs []image.Summary, current string, now time.Time, maxAge time.Duration) []string {
	var out []string
	for _, img := range imgs {
		if slices.Contains(img.RepoTags, current) || now.Sub(time.Unix(img.Created, 0)) < maxAge {
			continue
		}
		out = append(out, img.ID)
	}
	return out
}
