package dockernet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// testLabel marks the unlabelled ("foreign") resources tests make, so they
// are cleaned up too; it is not a bottle-reconcile label.
const testLabel = "test.bottle-reconcile.run"

var (
	// testBinary is a static bottle-reconcile binary, built once.
	testBinary string
	// testLockPath is shared by every driver in the tests, as the real
	// lock file would be.
	testLockPath string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dockernet-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testLockPath = filepath.Join(dir, "subnet.lock")
	testBinary = filepath.Join(dir, "bottle-reconcile")
	if err := buildBinary(testBinary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	removeImage := testImageCleanup(testBinary)
	code := m.Run()
	if err := removeImage(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// testImageCleanup returns what removes, after the tests, the bundle image
// they build from binary, unless it was there before they ran (another
// build of the same source may be using it). Without a daemon there is
// nothing to clean.
func testImageCleanup(binary string) func() error {
	nothing := func() error { return nil }
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nothing
	}
	tag := imageTag(bin)
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nothing
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.ImageInspect(ctx, tag); !cerrdefs.IsNotFound(err) {
		cli.Close() // there already, or no daemon
		return nothing
	}
	return func() error {
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := cli.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove test bundle image %s: %w", tag, err)
		}
		return nil
	}
}

func buildBinary(out string) error { return buildBinaryEnv(out, "CGO_ENABLED=0") }

// buildBinaryEnv builds bottle-reconcile with extra environment (cgo or not).
func buildBinaryEnv(out string, env ...string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/bottle-reconcile")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build bundle binary: %w\n%s", err, b)
	}
	return nil
}

// requireDocker returns a client of a daemon that answers (see dockertest).
func requireDocker(t *testing.T) *client.Client { return dockertest.Client(t) }

// newInstance returns a unique instance name and makes sure nothing
// labelled with it outlives the test.
func newInstance(t *testing.T, cli *client.Client) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	inst := "test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cs, nets := leftovers(ctx, t, cli, inst)
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
		assertNoneLeft(t, cli, inst)
	})
	return inst
}

// leftovers lists what carries inst as instance or test label.
func leftovers(ctx context.Context, t *testing.T, cli *client.Client, inst string) ([]container.Summary, []network.Summary) {
	t.Helper()
	var cs []container.Summary
	var nets []network.Summary
	for _, key := range []string{bottle.LabelInstance, testLabel} {
		f := filters.NewArgs(filters.Arg("label", key+"="+inst))
		c, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatalf("list containers: %v", err)
		}
		n, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Fatalf("list networks: %v", err)
		}
		cs, nets = append(cs, c...), append(nets, n...)
	}
	return cs, nets
}

// assertNoneLeft fails the test if any container or network of inst remains.
func assertNoneLeft(t *testing.T, cli *client.Client, inst string) {
	t.Helper()
	cs, nets := leftovers(context.Background(), t, cli, inst)
	for _, c := range cs {
		t.Errorf("container %s of %s left behind", c.Names, inst)
	}
	for _, n := range nets {
		t.Errorf("network %s of %s left behind", n.Name, inst)
	}
}

func testOptions(pool string) Options {
	o := Options{LockPath: testLockPath, BundleBinary: testBinary, ReadyTimeout: 30 * time.Second}
	if pool != "" {
		o.Pool = mustPrefix(pool)
	}
	return o
}

func newDrivers(t *testing.T, api dockerAPI, opts Options) (*NetworkDriver, *BundleDriver) {
	t.Helper()
	nd, err := NewNetworkDriver(api, opts, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	bd, err := NewBundleDriver(api, opts, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	return nd, bd
}

func wantLabels(inst, bottleName string, role bottle.Role) map[string]string {
	return map[string]string{
		bottle.LabelManagedBy:   bottle.ManagedByValue,
		bottle.LabelInstance:    inst,
		bottle.LabelBottle:      bottleName,
		bottle.LabelRole:        string(role),
		bottle.LabelHash:        "h-" + bottleName,
		bottle.LabelHashVersion: "1",
	}
}

func networkWant(inst, bottleName string) bottle.Want {
	return bottle.Want{
		Bottle: bottleName,
		Role:   bottle.RoleNetwork,
		Name:   bottle.Names(bottleName, bottle.RoleNetwork),
		Labels: wantLabels(inst, bottleName, bottle.RoleNetwork),
	}
}

func bundleWant(inst, bottleName string, subnet netip.Prefix, s spec.Spec) bottle.Want {
	return bottle.Want{
		Bottle:     bottleName,
		Role:       bottle.RoleBundle,
		Name:       bottle.Names(bottleName, bottle.RoleBundle),
		Labels:     wantLabels(inst, bottleName, bottle.RoleBundle),
		Bundle:     bottle.BundleInputs{Daemons: s.Daemons, Allow: s.Egress.Allow},
		Network:    bottle.Names(bottleName, bottle.RoleNetwork),
		Subnet:     subnet,
		BundleAddr: BundleAddr(subnet),
		GuestAddr:  GuestAddr(subnet),
	}
}

// mine keeps the resources of instance inst: the drivers return every
// instance's, and other tests or a reconciler may run alongside.
func mine(rs []bottle.Resource, inst string) map[string]bottle.Resource {
	m := map[string]bottle.Resource{}
	for _, r := range rs {
		if r.Instance == inst {
			m[r.Name] = r
		}
	}
	return m
}

// countingAPI counts the calls made through it.
type countingAPI struct {
	dockerAPI
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingAPI) count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[name]++
}

func (c *countingAPI) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.calls {
		m[k] = v
	}
	c.calls = nil
	return m
}

func (c *countingAPI) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	c.count("NetworkList")
	return c.dockerAPI.NetworkList(ctx, o)
}

func (c *countingAPI) NetworkInspect(ctx context.Context, id string, o network.InspectOptions) (network.Inspect, error) {
	c.count("NetworkInspect")
	return c.dockerAPI.NetworkInspect(ctx, id, o)
}

func (c *countingAPI) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	c.count("ContainerList")
	return c.dockerAPI.ContainerList(ctx, o)
}

func (c *countingAPI) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	c.count("ContainerInspect")
	return c.dockerAPI.ContainerInspect(ctx, id)
}

// buildCounter counts image builds.
type buildCounter struct {
	dockerAPI
	builds atomic.Int32
}

func (b *buildCounter) ImageBuild(ctx context.Context, r io.Reader, o build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	b.builds.Add(1)
	return b.dockerAPI.ImageBuild(ctx, r, o)
}
