package dockertest

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry serves an empty in-memory registry on 127.0.0.1 for t's life
// and returns its host:port. The Docker daemon treats registries on
// 127.0.0.0/8 as insecure-allowed, so it pushes to and pulls from it over
// plain HTTP with no daemon configuration.
func Registry(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for a test registry: %v", err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return l.Addr().String()
}

// anonymous is the X-Registry-Auth of no credentials: the daemon refuses a
// push without the header.
var anonymous = base64.URLEncoding.EncodeToString([]byte("{}"))

// PushAway tags the local image local as ref, pushes it to ref's registry
// and removes both names from the daemon, so that only the registry has the
// image and a driver must pull it. ref is removed from the daemon again
// when t ends, should the test have pulled it.
func PushAway(t testing.TB, cli *client.Client, local, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() { RemoveImage(t, cli, ref) })
	if err := cli.ImageTag(ctx, local, ref); err != nil {
		t.Fatalf("tag %s as %s: %v", local, ref, err)
	}
	rc, err := cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: anonymous})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	if err := drain(rc); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	RemoveImage(t, cli, ref)
	RemoveImage(t, cli, local)
	if _, err := cli.ImageInspect(ctx, ref); !cerrdefs.IsNotFound(err) {
		t.Fatalf("%s is still in the daemon after its removal (inspect: %v)", ref, err)
	}
}

// RemoveImage removes the image name ref from the daemon, and the image
// with it when no other name is left; a missing one is fine.
func RemoveImage(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	// Not t.Context(): cleanups run after it is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("remove image %s: %v", ref, err)
	}
}
