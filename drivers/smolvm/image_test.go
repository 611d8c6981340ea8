package smolvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// fakeImages is a Docker daemon holding the images in ids (ref → ID); with
// anyRef, every ref is there, with anyID(ref) as its ID.
type fakeImages struct {
	mu       sync.Mutex
	ids      map[string]string
	anyRef   bool
	down     bool // every call fails as if the daemon did not answer
	policies []string
	saves    int
	body     string // the archive; default "archive of <id>"
}

// anyID is the ID fakeImages gives ref in anyRef mode.
func anyID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (f *fakeImages) Ensure(_ context.Context, ref, policy string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policies = append(f.policies, policy)
	if f.down {
		return "", fmt.Errorf("inspect image %q: Cannot connect to the Docker daemon at unix:///var/run/docker.sock: %w", ref, cerrdefs.ErrUnavailable)
	}
	if f.anyRef {
		return anyID(ref), nil
	}
	id, ok := f.ids[ref]
	if !ok {
		return "", fmt.Errorf("pull image %q: registry answered: manifest unknown: %w", ref, cerrdefs.ErrNotFound)
	}
	return id, nil
}

func (f *fakeImages) SaveImage(_ context.Context, id string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	if f.body != "" {
		return io.NopCloser(strings.NewReader(f.body)), nil
	}
	return io.NopCloser(strings.NewReader("archive of " + id)), nil
}

// fakeArchive is where d's cache holds the archive of ref in anyRef mode.
func fakeArchive(d *Driver, ref string) string {
	return filepath.Join(d.opts.CacheDir, strings.TrimPrefix(anyID(ref), "sha256:")+".tar")
}

const testImageHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func sumOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestResolveImage(t *testing.T) {
	local := map[string]string{"bottle-dev:latest": "sha256:" + testImageHex, "ghcr.io/org/agent:1": "sha256:" + testImageHex}
	tests := []struct {
		name    string
		ref     string
		policy  string
		noImgs  bool
		down    bool
		want    string // "ARCHIVE" means the cache path
		wantErr string
		is      func(error) bool
	}{
		{name: "local image exported", ref: "bottle-dev:latest", policy: spec.PullMissing, want: "ARCHIVE"},
		{name: "registry image exported too", ref: "ghcr.io/org/agent:1", policy: spec.PullAlways, want: "ARCHIVE"},
		{name: "archive path passes through", ref: "/srv/images/agent.tar", want: "/srv/images/agent.tar"},
		{name: "relative archive passes through", ref: "./agent.tar.gz", want: "./agent.tar.gz"},
		{name: "pull fails: the registry's answer", ref: "ghcr.io/org/absent:1", policy: spec.PullMissing,
			wantErr: `pull image "ghcr.io/org/absent:1": registry answered: manifest unknown`, is: cerrdefs.IsNotFound},
		{name: "docker down: no fallback to a guest pull", ref: "bottle-dev:latest", down: true,
			wantErr: "Cannot connect to the Docker daemon", is: cerrdefs.IsUnavailable},
		{name: "no exporter", ref: "ghcr.io/org/agent:1", noImgs: true,
			wantErr: `image "ghcr.io/org/agent:1": no Docker image source configured`, is: cerrdefs.IsFailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imgs := &fakeImages{ids: local, down: tt.down}
			cache := t.TempDir()
			d := newFakeDriver(t, &fakeRunner{}, Options{Images: imgs, CacheDir: cache})
			if tt.noImgs {
				d.opts.Images = nil
			}
			got, err := d.resolveImage(context.Background(), tt.ref, tt.policy)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !tt.is(err) {
					t.Fatalf("resolveImage error = %v, want %q of its class", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := source{ref: tt.want}
			if tt.want == "ARCHIVE" {
				body := "archive of sha256:" + testImageHex
				want = source{ref: filepath.Join(cache, testImageHex+".tar"), sum: sumOf(body), size: int64(len(body))}
				b, err := os.ReadFile(want.ref)
				if err != nil || string(b) != body {
					t.Errorf("archive = %q, %v", b, err)
				}
				if b, err := os.ReadFile(want.ref + sumSuffix); err != nil || string(b) != want.sum+"\n" {
					t.Errorf("sum file = %q, %v; want the archive's sha256", b, err)
				}
				if !slices.Equal(imgs.policies, []string{tt.policy}) {
					t.Errorf("policies passed %q, want %q", imgs.policies, tt.policy)
				}
			}
			if got != want {
				t.Errorf("resolveImage(%q) = %+v, want %+v", tt.ref, got, want)
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
	var srcs []source
	for _, ref := range []string{"a:1", "a:1", "b:2"} {
		src, err := d.resolveImage(context.Background(), ref, spec.PullMissing)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
		now = now.Add(time.Hour)
	}
	if srcs[0] != srcs[1] || srcs[1] != srcs[2] || srcs[0].sum == "" {
		t.Errorf("sources differ or lack a sum: %+v", srcs)
	}
	if imgs.saves != 1 {
		t.Errorf("%d exports, want 1 (same image ID)", imgs.saves)
	}
	// Reuse refreshes the mtime, which is what pruning ages by.
	info, err := os.Stat(srcs[0].ref)
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

// An archive exported before sums were kept is hashed once, and its sum
// is read from then on.
func TestArchiveSumOfOldArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), testImageHex+".tar")
	if err := os.WriteFile(path, []byte("old archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := archiveSum(path)
	if err != nil || sum != sumOf("old archive") {
		t.Fatalf("archiveSum = %q, %v", sum, err)
	}
	// The sum file is what is read now: change it and the answer follows.
	if err := os.WriteFile(path+sumSuffix, []byte(strings.Repeat("a", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if sum, err := archiveSum(path); err != nil || sum != strings.Repeat("a", 64) {
		t.Errorf("archiveSum = %q, %v; want the stored sum, not a rehash", sum, err)
	}
}

func TestResolveImageBadID(t *testing.T) {
	imgs := &fakeImages{ids: map[string]string{"a:1": "sha256:../../etc/passwd"}}
	d := newFakeDriver(t, &fakeRunner{}, Options{Images: imgs, CacheDir: t.TempDir()})
	if p, err := d.resolveImage(context.Background(), "a:1", spec.PullMissing); err == nil {
		t.Fatalf("resolveImage accepted a malformed ID, gave %+v", p)
	}
}

func TestPruneCache(t *testing.T) {
	cache := t.TempDir()
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-8 * 24 * time.Hour)
	recent := now.Add(-time.Hour)
	files := map[string]time.Time{
		"old-unused.tar":             old,
		"old-unused.tar.sha256":      old,
		"old-used.tar":               old,
		"old-used-by-sum.tar":        old,
		"old-used-by-sum.tar.sha256": old,
		"old-unsummed.tar":           old, // exported before sums: hashed once
		"recent-unused.tar":          recent,
		"orphan.tar.sha256":          old,
		".export-1.tmp":              old,
		"unrelated-file.txt":         old,
	}
	for name, mt := range files {
		p := filepath.Join(cache, name)
		body := "x " + name
		if strings.HasSuffix(name, sumSuffix) {
			body = sumOf("x "+strings.TrimSuffix(name, sumSuffix)) + "\n"
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	d := newFakeDriver(t, &fakeRunner{}, Options{Images: &fakeImages{}, CacheDir: cache})
	d.now = func() time.Time { return now }
	// As smolvm lists them: one machine by the path it was given (older
	// smolvm, the emulator), one by local:<sha256>.
	used := fmt.Sprintf(`[{"name":"a","state":"running","labels":{},"image":%q},
		{"name":"b","state":"stopped","labels":{},"image":"local:%s"},
		{"name":"c","state":"stopped","labels":{},"image":"local:%s"}]`,
		filepath.Join(cache, "old-used.tar"), sumOf("x old-used-by-sum.tar"), sumOf("x old-unsummed.tar"))
	byName, err := parseList([]byte(used))
	if err != nil {
		t.Fatal(err)
	}
	d.pruneCache(imagesInUse(byName))

	want := []string{"old-unsummed.tar", "old-unsummed.tar.sha256", "old-used-by-sum.tar", "old-used-by-sum.tar.sha256",
		"old-used.tar", "recent-unused.tar", "unrelated-file.txt"}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("left %q,\nwant %q", got, want)
	}
}

// An archive over smolvm's cap gets --max-image-size with its size in
// bytes; one at the cap does not.
func TestCreateMaxImageSize(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		want  string
	}{
		{name: "under the cap", limit: 1 << 20},
		{name: "at the cap", limit: int64(len("archive of " + anyID("ghcr.io/org/agent:1")))},
		{name: "over the cap", limit: 10, want: fmt.Sprintf(" --max-image-size %d ", len("archive of "+anyID("ghcr.io/org/agent:1")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{}
			d := newFakeDriver(t, f, Options{})
			d.archiveLimit = tt.limit
			if _, err := d.Create(context.Background(), testWant()); err != nil {
				t.Fatal(err)
			}
			c, _ := f.find("machine create")
			argv := joined(c.args)
			if !strings.Contains(argv, " --image "+fakeArchive(d, "ghcr.io/org/agent:1")+" ") {
				t.Errorf("argv %q does not pass the archive", argv)
			}
			if got := strings.Contains(argv, "--max-image-size"); got != (tt.want != "") || (tt.want != "" && !strings.Contains(argv, tt.want)) {
				t.Errorf("argv %q, want %q", argv, tt.want)
			}
		})
	}
}

// The default cap is smolvm's, 8 GiB: a sparse 8 GiB+1 archive in the
// cache is passed with --max-image-size, without writing 8 GiB.
func TestCreateMaxImageSizeDefault(t *testing.T) {
	f := &fakeRunner{}
	d := newFakeDriver(t, f, Options{})
	archive := fakeArchive(d, "ghcr.io/org/agent:1")
	fh, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(DefaultArchiveLimit + 1); err != nil {
		fh.Close()
		t.Skipf("no sparse file here: %v", err)
	}
	fh.Close()
	if err := writeSum(archive, strings.Repeat("b", 64)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(context.Background(), testWant()); err != nil {
		t.Fatal(err)
	}
	c, _ := f.find("machine create")
	if want := fmt.Sprintf(" --image %s --max-image-size %d ", archive, int64(DefaultArchiveLimit)+1); !strings.Contains(joined(c.args), want) {
		t.Errorf("argv %q lacks %q", joined(c.args), want)
	}
}

func TestCreatePassesArchiveAndPrunes(t *testing.T) {
	cache := t.TempDir()
	stale := filepath.Join(cache, strings.Repeat("f", 64)+".tar")
	inUse := filepath.Join(cache, strings.Repeat("e", 64)+".tar")
	for _, p := range []string{stale, inUse} {
		if err := os.WriteFile(p, []byte("x "+p), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-30 * 24 * time.Hour)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// smolvm reports an archive machine's image as local:<sha256>.
	ls := fmt.Sprintf(`[{"name":"other","state":"running","labels":{},"image":"local:%s"}]`, sumOf("x "+inUse))
	f := &fakeRunner{answers: map[string]fakeAnswer{"machine ls": {stdout: ls}}}
	imgs := &fakeImages{ids: map[string]string{"bottle-dev:latest": "sha256:" + testImageHex}}
	d := newFakeDriver(t, f, Options{Images: imgs, CacheDir: cache})
	w := testWant()
	w.Guest.Image = "bottle-dev:latest"
	if _, err := d.Create(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	c, _ := f.find("machine create")
	archive := filepath.Join(cache, testImageHex+".tar")
	if !strings.Contains(joined(c.args), "--image "+archive+" ") {
		t.Errorf("create argv %q does not pass the archive", c.args)
	}
	for p, want := range map[string]bool{stale: false, inUse: true, archive: true, archive + sumSuffix: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
