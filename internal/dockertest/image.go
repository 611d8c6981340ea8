package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// BuildBusyboxImage builds tag, a FROM scratch image holding Debian's
// static busybox (so a guest has a shell and nc) that sleeps as uid 1000,
// with labels for cleanup. No registry is needed. Without
// /bin/busybox the test is Unusable.
func BuildBusyboxImage(t testing.TB, cli *client.Client, tag string, labels map[string]string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		Unusable(t, fmt.Errorf("no static /bin/busybox (apt-get install busybox-static): %w", err))
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	df := "FROM scratch\nCOPY . /\nUSER 1000:1000\nCMD [\"/bin/sleep\", \"2147483647\"]\n"
	files := []struct {
		name, link string
		mode       int64
		data       []byte
	}{
		{name: "Dockerfile", mode: 0o644, data: []byte(df)},
		{name: "bin/", mode: 0o755},
		{name: "tmp/", mode: 0o1777},
		{name: "bin/busybox", mode: 0o755, data: bb},
		{name: "bin/sh", link: "busybox"},
		{name: "bin/sleep", link: "busybox"},
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Now(), Typeflag: tar.TypeReg}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.link, 0o777
		case strings.HasSuffix(f.name, "/"):
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(f.data)
	}
	tw.Close()
	resp, err := cli.ImageBuild(context.Background(), &ctxTar, build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Labels: labels,
	})
	if err != nil {
		t.Fatalf("build image %s: %v", tag, err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("build image %s: %s", tag, out)
	}
}
