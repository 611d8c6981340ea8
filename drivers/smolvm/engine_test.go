package smolvm

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// dockerImages returns an EngineImages for the local daemon. It skips when
// no daemon answers, unless BOTTLE_REQUIRE_DOCKER=1, where that is a failure.
func dockerImages(t *testing.T) *EngineImages {
	t.Helper()
	e, err := NewEngineImages("")
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var resp *http.Response
		if resp, err = e.get(ctx, "/_ping", nil); err == nil {
			resp.Body.Close()
			return e
		}
	}
	if os.Getenv("BOTTLE_REQUIRE_DOCKER") == "1" {
		t.Fatalf("docker is required (BOTTLE_REQUIRE_DOCKER=1) but does not answer: %v", err)
	}
	t.Skipf("docker does not answer, skipping (set BOTTLE_REQUIRE_DOCKER=1 to fail instead): %v", err)
	return nil
}

// dockerDo sends one request to the daemon and fails the test on a non-2xx
// answer.
func dockerDo(t *testing.T, e *EngineImages, method, path string, q url.Values, body io.Reader, contentType string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := url.URL{Scheme: "http", Host: "docker", Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("docker %s %s: %s: %s", method, path, resp.Status, out)
	}
	return out
}

// buildTestImage builds a tiny FROM scratch image tagged tag and removes it
// when the test ends.
func buildTestImage(t *testing.T, e *EngineImages, tag string) {
	t.Helper()
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for name, body := range map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\nCMD [\"/hello\"]\n",
		"hello.txt":  "hello from " + tag + "\n",
	} {
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
	t.Cleanup(func() {
		dockerDo(t, e, http.MethodDelete, "/images/"+tag, url.Values{"force": {"1"}}, nil, "")
	})
	out := dockerDo(t, e, http.MethodPost, "/build", url.Values{"t": {tag}, "rm": {"1"}, "forcerm": {"1"}}, &ctxTar, "application/x-tar")
	// The build reports failure inside its 200 stream.
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("docker build output: %v: %s", err, out)
		}
		if msg.Error != "" {
			t.Fatalf("docker build: %s", msg.Error)
		}
	}
}

func TestEngineImagesNotFound(t *testing.T) {
	e := dockerImages(t)
	_, err := e.ImageID(context.Background(), "bottle-test-smolvm-missing:"+randHex(t, 4))
	if !cerrdefs.IsNotFound(err) {
		t.Fatalf("ImageID of a missing image = %v, want not found", err)
	}
}

func TestNewEngineImagesRefusesRemote(t *testing.T) {
	for _, host := range []string{"tcp://10.0.0.1:2375", "ssh://box", "unix://"} {
		if _, err := NewEngineImages(host); err == nil {
			t.Errorf("NewEngineImages(%q) accepted", host)
		}
	}
}

func TestImageExport(t *testing.T) { eachBackend(t, testImageExport) }

// A locally built image reaches smolvm as a `docker save` archive in the
// content-addressed cache, and a second create reuses the archive.
func testImageExport(t *testing.T, b *backend) {
	ctx := context.Background()
	e := dockerImages(t)
	tag := "bottle-test-smolvm-export:" + randHex(t, 6)
	buildTestImage(t, e, tag)
	id, err := e.ImageID(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	archive := filepath.Join(cache, strings.TrimPrefix(id, "sha256:")+".tar")
	d := b.driver(t, Options{Images: e, CacheDir: cache})

	var first os.FileInfo
	for i := 0; i < 2; i++ {
		w := b.want(t)
		w.Spec.Image = tag
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
