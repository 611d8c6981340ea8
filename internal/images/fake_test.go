package images

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// fakeAPI is a daemon holding the images in ids (ref → ID). A pull of a
// ref in remote adds it; pullStream, when set, is the progress stream
// every pull answers with.
type fakeAPI struct {
	mu         sync.Mutex
	ids        map[string]string
	remote     map[string]string
	pullErr    error
	pullStream string
	pulls      []image.PullOptions
	pulled     []string
}

func (f *fakeAPI) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.ids[ref]
	if !ok {
		return image.InspectResponse{}, fmt.Errorf("No such image: %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return image.InspectResponse{ID: id}, nil
}

func (f *fakeAPI) ImagePull(_ context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, opts)
	f.pulled = append(f.pulled, ref)
	if f.pullErr != nil {
		return nil, f.pullErr
	}
	if f.pullStream != "" {
		return io.NopCloser(strings.NewReader(f.pullStream)), nil
	}
	id, ok := f.remote[ref]
	if !ok {
		return io.NopCloser(strings.NewReader(`{"status":"Pulling"}` + "\n" +
			`{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}` + "\n")), nil
	}
	if f.ids == nil {
		f.ids = map[string]string{}
	}
	f.ids[ref] = id
	return io.NopCloser(strings.NewReader(`{"status":"Pulling from x"}` + "\n" + `{"status":"Digest: sha256:aa"}` + "\n")), nil
}
