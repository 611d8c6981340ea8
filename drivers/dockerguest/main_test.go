package dockerguest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw/hostfwtest"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
)

// testLabel marks what the tests make outside the driver (networks, stand-in
// containers, images), so it is cleaned up too; not a bottle-reconcile label.
const testLabel = "test.bottle-reconcile.run"

// busyboxPath is Debian's busybox-static, the only program in the test image.
const busyboxPath = "/bin/busybox"

func TestMain(m *testing.M) {
	code := m.Run()
	// A last look for rules any test of this process left: the firewall is
	// the host's, and outlives the process.
	if out, err := exec.Command("iptables-save", "-t", "filter").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, `--comment "bottle-reconcile test-`+runID) {
				fmt.Fprintln(os.Stderr, "iptables rule left behind:", l)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// runID is part of every instance name the tests of this process use.
var runID = func() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// requireDocker returns a client of a daemon that answers; the firewall half
// also needs root and iptables, checked the same way (see dockertest).
func requireDocker(t *testing.T) *client.Client {
	t.Helper()
	cli := dockertest.Client(t)
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		dockertest.Unusable(t, fmt.Errorf("iptables-restore not found: %w", err))
	} else if out, err := exec.Command("iptables-save", "-t", "filter").CombinedOutput(); err != nil {
		dockertest.Unusable(t, fmt.Errorf("iptables-save (needs root): %v: %s", err, out))
	}
	return cli
}

// newInstance returns a unique instance name and makes sure nothing labelled
// with it, and no firewall rule tagged with it, outlives the test.
func newInstance(t *testing.T, cli *client.Client) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	inst := "test-" + runID + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cs, nets, imgs := leftovers(ctx, t, cli, inst)
		for _, c := range cs {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("cleanup: remove container %s: %v", c.Names, err)
			}
		}
		for _, n := range nets {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("cleanup: remove network %s: %v", n.Name, err)
			}
		}
		for _, i := range imgs {
			if _, err := cli.ImageRemove(ctx, i.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("cleanup: remove image %s: %v", i.RepoTags, err)
			}
		}
		hostfwtest.DeleteHostRules(t, testRules(t, inst))
		cs, nets, imgs = leftovers(ctx, t, cli, inst)
		for _, c := range cs {
			t.Errorf("container %s of %s left behind", c.Names, inst)
		}
		for _, n := range nets {
			t.Errorf("network %s of %s left behind", n.Name, inst)
		}
		for _, i := range imgs {
			t.Errorf("image %s of %s left behind", i.RepoTags, inst)
		}
		for _, r := range testRules(t, inst) {
			t.Errorf("iptables rule of %s left behind: %s", inst, r)
		}
	})
	return inst
}

// leftovers lists what carries inst as instance or test label.
func leftovers(ctx context.Context, t *testing.T, cli *client.Client, inst string) ([]container.Summary, []network.Summary, []image.Summary) {
	t.Helper()
	var cs []container.Summary
	var nets []network.Summary
	var imgs []image.Summary
	seen := map[string]bool{}
	for _, key := range []string{bottle.LabelInstance, testLabel} {
		f := filters.NewArgs(filters.Arg("label", key+"="+inst))
		c, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatalf("list containers: %v", err)
		}
		for _, x := range c {
			if !seen[x.ID] {
				seen[x.ID] = true
				cs = append(cs, x)
			}
		}
		n, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Fatalf("list networks: %v", err)
		}
		nets = append(nets, n...)
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", testLabel+"="+inst))})
	if err != nil {
		t.Fatalf("list images: %v", err)
	}
	return cs, nets, imgs
}

// testRules returns the filter table's rules whose comment names instance
// inst, as iptables-save prints them after "-A ".
func testRules(t *testing.T, inst string) []string {
	t.Helper()
	return hostfwtest.HostRules(t, func(c string) bool { return strings.HasPrefix(c, "bottle-reconcile "+inst+" ") })
}

// buildTestImage builds a scratch image holding busybox and a few links to
// it, labelled with inst, and returns its tag. Its default command sleeps.
func buildTestImage(t *testing.T, cli *client.Client, inst string) string {
	t.Helper()
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		dockertest.Unusable(t, fmt.Errorf("the test image needs a static busybox at %s (apt-get install busybox-static): %w", busyboxPath, err))
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	df := "FROM scratch\nCOPY bin/ /bin/\nENV PATH=/bin\nCMD [\"sleep\", \"86400\"]\n"
	add(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))}, []byte(df))
	add(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))}, bb)
	for _, l := range []string{"sh", "nc", "echo", "sleep", "timeout", "ip", "cat", "ls"} {
		add(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tag := "bottle-reconcile-dockerguest-test:" + inst
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{tag}, Labels: map[string]string{testLabel: inst}, Remove: true, ForceRemove: true,
	})
	if err != nil {
		t.Fatalf("build test image: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Error != "" {
			t.Fatalf("build test image: %s", m.Error)
		}
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		t.Fatalf("build test image: %v", err)
	}
	return tag
}
