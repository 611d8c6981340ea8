package smolvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// fakeImages is a Docker daemon holding the images in ids (ref → ID).
type fakeImages struct {
	mu      sync.Mutex
	ids     map[string]string
	down    bool // every call fails as if the daemon did not answer
	lookups int
	saves   int
}

func (f *fakeImages) ImageID(_ context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if f.down {
		return "", errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
	}
	id, ok := f.ids[ref]
	if !ok {
		return "", fmt.Errorf("No such image: %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return id, nil
}

func (f *fakeImages) SaveImage(_ context.Context, id string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	return io.NopCloser(strings.NewReader("archive of " + id)), nil
}

const testImageHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestResolveImage(t *testing.T) {
	local := map[string]string{"bottle-dev:latest": "sha256:" + testImageHex}
	tests := []struct {
		name        string
		ref         string
		down        bool
		want        string // "ARCHIVE" means the cache path
		wantLookups int
	}{
		{name: "local image exported", ref: "bottle-dev:latest", want: "ARCHIVE", wantLookups: 1},
		{name: "registry ref as is", ref: "ghcr.io/org/agent:1", want: "ghcr.io/org/agent:1", wantLookups: 1},
		{name: "archive path passes through", ref: "/srv/images/agent.tar", want: "/srv/images/agent.tar"},
		{name: "relative archive passes through", ref: "./agent.tar.gz", want: "./agent.tar.gz"},
		{name: "docker down falls back", ref: "bottle-dev:latest", down: true, want: "bottle-dev:latest", wantLookups: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imgs := &fakeImages{ids: local, down: tt.down}
			cache := t.TempDir()
			d := newFakeDriver(t, &fakeRunner{}, Options{Images: imgs, CacheDir: cache})
			got, err := d.resolveImage(context.Background(), tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "ARCHIVE" {
				want = filepath.Join(cache, testImageHex+".tar")
				b, err := os.ReadFile(want)
				if err != nil || string(b) != "archive of sha256:"+testImageHex {
					t.Errorf("archive = %q, %v", b, err)
				}
			}
			if got != want {
				t.Errorf("resolveImage(%q) = %q, want %q", tt.ref, got, want)
			}
			if imgs.lookups != tt.wantLookups {
				t.Errorf("%d image lookups, want %d", imgs.lookups, tt.wantLookups)
			}
		})
	}
}

func TestResolveImageReusesArchive(t *testing.T) {
	imgs := &fakeImages{ids: map[string]string{"a:1": "sha256:" + testImageHex, "b:2": "sha256:" + testImageHex}}
	cache := t.TempDir()
	d := newFakeDriver(t, &fakeRunner{}, Options{Images: imgs, CacheDir: cache})
	now := time.Now()
	d.now = func() time.Time { return now }
	var paths []string
	for _, ref := range []string{"a:1", "a:1", "b:2"} {
		p, err := d.resolveImage(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		now = now.Add(time.Hour)
	}
	if paths[0] != paths[1] || paths[1] != paths[2] {
		t.Errorf("paths differ: %q", paths)
	}
	if imgs.saves != 1 {
		t.Errorf("%d exports, want 1 (same image ID)", imgs.saves)
	}
	// Reuse refreshes the mtime, which is what pruning ages by.
	info, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(-time.Hour); !info.ModTime().Equal(want) {
		t.Errorf("mtime %v, want the last use %v", info.ModTime(), want)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".export-*")); len(left) != 0 {
		t.Errorf("temp files left behind: %q", left)
	}
}

func TestResolveImageBadID(t *testing.T) {
	imgs := &fakeImages{ids: map[string]string{"a:1": "sha256:../../etc/passwd"}}
	d := newFakeDriver(t, &fakeRunner{}, Options{Images: imgs, CacheDir: t.TempDir()})
	if p, err := d.resolveImage(context.Background(), "a:1"); err == nil {
		t.Fatalf("resolveImage accepted a malformed ID, gave %q", p)
	}
}

func TestPruneCache(t *testing.T) {
	cache := t.TempDir()
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-8 * 24 * time.Hour)
	recent := now.Add(-time.Hour)
	files := map[string]time.Time{
		"old-unused.tar":     old,
		"old-used.tar":       old,
		"recent-unused.tar":  recent,
		".export-1.tmp":      old,
		"unrelated-file.txt": old,
	}
	for name, mt := range files {
		p := filepath.Join(cache, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	d := newFakeDriver(t, &fakeRunner{}, Options{Images: &fakeImages{}, CacheDir: cache})
	d.now = func() time.Time { return now }
	d.pruneCache(map[string]bool{filepath.Join(cache, "old-used.tar"): true})

	want := map[string]bool{"old-used.tar": true, "recent-unused.tar": true, "unrelated-file.txt": true}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		got[e.Name()] = true
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

func TestCreatePassesArchiveAndPrunes(t *testing.T) {
	cache := t.TempDir()
	stale := filepath.Join(cache, strings.Repeat("f", 64)+".tar")
	inUse := filepath.Join(cache, strings.Repeat("e", 64)+".tar")
	for _, p := range []string{stale, inUse} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-30 * 24 * time.Hour)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	ls := fmt.Sprintf(`[{"name":"other","state":"running","labels":{},"image":%q}]`, inUse)
	f := &fakeRunner{answers: map[string]fakeAnswer{"machine ls": {stdout: ls}}}
	imgs := &fakeImages{ids: map[string]string{"bottle-dev:latest": "sha256:" + testImageHex}}
	d := newFakeDriver(t, f, Options{Images: imgs, CacheDir: cache})
	w := testWant()
	w.Spec.Image = "bottle-dev:latest"
	if _, err := d.Create(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	c, _ := f.find("machine create")
	archive := filepath.Join(cache, testImageHex+".tar")
	if !strings.Contains(joined(c.args), "--image "+archive+" ") {
		t.Errorf("create argv %q does not pass the archive", c.args)
	}
	for p, want := range map[string]bool{stale: false, inUse: true, archive: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
