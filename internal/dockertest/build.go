package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// Build builds the image tag from files (name → content; "Dockerfile" among
// them) and removes it when t ends.
func Build(t testing.TB, cli *client.Client, tag string, files map[string]string) {
	t.Helper()
	var buildCtx bytes.Buffer
	tw := tar.NewWriter(&buildCtx)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveImage(t, cli, tag) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(ctx, &buildCtx, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("docker build %s: %v", tag, err)
	}
	if err := drain(resp.Body); err != nil {
		t.Fatalf("docker build %s: %v", tag, err)
	}
}

// drain reads a daemon's progress stream to its end and fails when it
// reports an error: builds and pushes fail inside their 200 stream.
func drain(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read progress: %w", err)
	}
	if strings.Contains(string(b), `"errorDetail"`) {
		return fmt.Errorf("daemon reported: %s", b)
	}
	return nil
}
