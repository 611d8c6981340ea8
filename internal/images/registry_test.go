package images

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// countingAPI counts the pulls a real daemon is asked for.
type countingAPI struct {
	*client.Client
	pulls int
}

func (c *countingAPI) ImagePull(ctx context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error) {
	c.pulls++
	return c.Client.ImagePull(ctx, ref, opts)
}

// Against a real registry on 127.0.0.1 and the real daemon: an image only
// the registry has is pulled; a missing one fails naming the image and the
// registry's answer; never pulls nothing.
func TestEnsureRealRegistry(t *testing.T) {
	cli := dockertest.Client(t)
	reg := dockertest.Registry(t)
	suffix := randHex(t)
	local := "bottle-test-images:" + suffix
	dockertest.Build(t, cli, local, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n",
		"hello.txt":  "hello from " + local + "\n",
	})
	ref := reg + "/bottle-test/agent:" + suffix
	dockertest.PushAway(t, cli, local, ref)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api := &countingAPI{Client: cli}
	d := New(api, noCreds, testr.New(t))

	if _, err := d.Ensure(ctx, ref, spec.PullNever); !cerrdefs.IsNotFound(err) || api.pulls != 0 {
		t.Errorf("never, not on the host: %v after %d pulls; want not found and no pull", err, api.pulls)
	}
	id, err := d.Ensure(ctx, ref, spec.PullMissing)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ImageInspect(ctx, ref)
	if err != nil || ins.ID != id || api.pulls != 1 {
		t.Errorf("after the pull: daemon has %q (%v), Ensure said %q, %d pulls", ins.ID, err, id, api.pulls)
	}
	if again, err := d.Ensure(ctx, ref, spec.PullMissing); err != nil || again != id || api.pulls != 1 {
		t.Errorf("missing, present: %q, %v, %d pulls; want no second pull", again, err, api.pulls)
	}
	if again, err := d.Ensure(ctx, ref, spec.PullAlways); err != nil || again != id || api.pulls != 2 {
		t.Errorf("always: %q, %v, %d pulls; want a second pull", again, err, api.pulls)
	}

	for _, tt := range []struct{ ref, answer string }{
		{reg + "/bottle-test/absent:" + suffix, "name unknown"},
		{reg + "/bottle-test/agent:absent-" + suffix, "manifest unknown"},
	} {
		t.Cleanup(func() { dockertest.RemoveImage(t, cli, tt.ref) })
		_, err = d.Ensure(ctx, tt.ref, spec.PullMissing)
		if err == nil || !strings.Contains(err.Error(), `pull image "`+tt.ref+`": registry answered: `) || !strings.Contains(err.Error(), tt.answer) {
			t.Errorf("pull of a missing image: %v; want the image and the registry's %q", err, tt.answer)
		}
	}
}

func randHex(t *testing.T) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
