package smolvm

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr/testr"
)

// dockerClient returns a client of a daemon that answers (see dockertest).
func dockerClient(t *testing.T) *client.Client { return dockertest.Client(t) }

// buildTestImage builds a tiny FROM scratch image tagged tag and removes it
// when the test ends.
func buildTestImage(t *testing.T, cli *client.Client, tag string) {
	t.Helper()
	dockertest.Build(t, cli, tag, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\nCMD [\"/hello\"]\n",
		"hello.txt":  "hello from " + tag + "\n",
	})
}

// fakeImageAPI records DockerImages' calls to the Docker client.
type fakeImageAPI struct {
	inspected []string
	pulled    []string
	saved     [][]string
	err       error
}

func (f *fakeImageAPI) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.inspected = append(f.inspected, ref)
	if f.err != nil {
		return image.InspectResponse{}, f.err
	}
	return image.InspectResponse{ID: "sha256:" + testImageHex}, nil
}

func (f *fakeImageAPI) ImagePull(_ context.Context, ref string, _ image.PullOptions) (io.ReadCloser, error) {
	f.pulled = append(f.pulled, ref)
	return io.NopCloser(strings.NewReader("{}")), f.err
}

func (f *fakeImageAPI) ImageSave(_ context.Context, ids []string, _ ...client.ImageSaveOption) (io.ReadCloser, error) {
	f.saved = append(f.saved, ids)
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(strings.NewReader("archive")), nil
}

// DockerImages asks the client for the one image it is given and keeps the
// client's error classes.
func TestDockerImagesAdapter(t *testing.T) {
	ctx := context.Background()
	api := &fakeImageAPI{}
	d := NewDockerImages(api, testr.New(t))
	id, err := d.Ensure(ctx, "bottle-dev:latest", spec.PullMissing)
	if err != nil || id != "sha256:"+testImageHex || len(api.pulled) != 0 {
		t.Fatalf("Ensure = %q, %v after pulls %q", id, err, api.pulled)
	}
	rc, err := d.SaveImage(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "archive" {
		t.Errorf("SaveImage body = %q", b)
	}
	rc.Close()
	if !slices.Equal(api.inspected, []string{"bottle-dev:latest"}) {
		t.Errorf("inspected %q", api.inspected)
	}
	if len(api.saved) != 1 || !slices.Equal(api.saved[0], []string{id}) {
		t.Errorf("saved %q, want [[%s]]", api.saved, id)
	}

	api.err = fmt.Errorf("No such image: x: %w", cerrdefs.ErrNotFound)
	if _, err := d.Ensure(ctx, "x", spec.PullNever); !cerrdefs.IsNotFound(err) || len(api.pulled) != 0 {
		t.Errorf("Ensure error = %v after pulls %q, want not found and no pull", err, api.pulled)
	}
	if _, err := d.SaveImage(ctx, "x"); !cerrdefs.IsNotFound(err) {
		t.Errorf("SaveImage error = %v, want not found", err)
	}
}

func TestImageExport(t *testing.T) { eachBackend(t, testImageExport) }

// A locally built image reaches smolvm as a `docker save` archive in the
// content-addressed cache, and a second create reuses the archive.
func testImageExport(t *testing.T, b *backend) {
	ctx := context.Background()
	cli := dockerClient(t)
	tag := "bottle-test-smolvm-export:" + randHex(t, 6)
	buildTestImage(t, cli, tag)
	images := NewDockerImages(cli, testr.New(t))
	id, err := images.Ensure(ctx, tag, spec.PullNever)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	archive := filepath.Join(cache, strings.TrimPrefix(id, "sha256:")+".tar")
	d := b.driver(t, Options{Images: images, CacheDir: cache})

	var first os.FileInfo
	for i := 0; i < 2; i++ {
		w := b.want(t)
		w.Guest.Image = tag
		r, err := d.Create(ctx, w)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		info, err := os.Stat(archive)
		if err != nil {
			t.Fatalf("create %d: archive: %v", i, err)
		}
		if i == 0 {
			first = info
			assertDockerArchive(t, archive, tag)
		} else if !os.SameFile(first, info) {
			t.Errorf("create %d exported the image again instead of reusing %s", i, archive)
		}
		if err := d.Delete(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if b.emulated {
		n := 0
		for _, args := range b.calls(t) {
			if line := strings.Join(args, " "); strings.HasPrefix(line, "machine create ") && strings.Contains(line, " --image "+archive+" ") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d creates with --image %s, want 2", n, archive)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".export-*")); len(left) != 0 {
		t.Errorf("temp files left in the cache: %q", left)
	}
}

// assertDockerArchive checks that path is a `docker save` archive.
func assertDockerArchive(t *testing.T, path, tag string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no manifest.json: not a docker save archive of %s", path, tag)
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Name == "manifest.json" {
			return
		}
	}
}

func TestRegistryImage(t *testing.T) { eachBackend(t, testRegistryImage) }

// An image only a registry has is pulled by the host's Docker (the guest
// never pulls) and smolvm gets it as an absolute .tar path.
func testRegistryImage(t *testing.T, b *backend) {
	ctx := context.Background()
	cli := dockerClient(t)
	reg := dockertest.Registry(t)
	suffix := randHex(t, 6)
	local := "bottle-test-smolvm-registry:" + suffix
	buildTestImage(t, cli, local)
	ref := reg + "/bottle-test/agent:" + suffix
	dockertest.PushAway(t, cli, local, ref)

	cache := t.TempDir()
	d := b.driver(t, Options{Images: NewDockerImages(cli, testr.New(t)), CacheDir: cache})
	w := b.want(t)
	w.Guest.Image, w.Guest.PullPolicy = ref, spec.PullMissing
	if _, err := d.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("the host's Docker did not pull %s: %v", ref, err)
	}
	archive := filepath.Join(cache, strings.TrimPrefix(ins.ID, "sha256:")+".tar")
	assertDockerArchive(t, archive, ref)
	if b.emulated {
		var creates []string
		for _, args := range b.calls(t) {
			if line := strings.Join(args, " "); strings.HasPrefix(line, "machine create ") {
				creates = append(creates, line)
			}
		}
		if len(creates) != 1 || !strings.Contains(creates[0], " --image "+archive+" ") || !filepath.IsAbs(archive) {
			t.Errorf("creates %q, want one with --image %s", creates, archive)
		}
	}

	// Missing in the registry: the error names the image and the answer,
	// and nothing is created.
	missing := reg + "/bottle-test/agent:absent-" + suffix
	t.Cleanup(func() { dockertest.RemoveImage(t, cli, missing) })
	w2 := b.want(t)
	w2.Guest.Image = missing
	_, err = d.Create(ctx, w2)
	if err == nil || !strings.Contains(err.Error(), `pull image "`+missing+`": registry answered: `) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("create from a missing image: %v; want the image and the registry's answer", err)
	}
	// never, and the host does not have it: refused before any pull.
	w2.Guest.PullPolicy = spec.PullNever
	if _, err := d.Create(ctx, w2); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "spec.pullPolicy is never") {
		t.Errorf("create with pullPolicy never: %v; want not found", err)
	}
}
