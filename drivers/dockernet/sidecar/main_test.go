package sidecar

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockernet"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// testLabel marks the unlabelled ("foreign") resources tests make.
const testLabel = dockertest.TestLabel

var (
	// testBinary is a static bottle-reconcile binary, built once.
	testBinary string
	// testLockPath is shared by every driver in the tests, as the real
	// lock file would be.
	testLockPath string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sidecar-test-")
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

// newInstance returns a unique instance name; nothing labelled with it
// outlives the test.
func newInstance(t *testing.T, cli *client.Client) string { return dockertest.Instance(t, cli) }

// assertNoneLeft fails the test if any container or network of inst remains.
func assertNoneLeft(t *testing.T, cli *client.Client, inst string) {
	t.Helper()
	dockertest.AssertNoneLeft(t, cli, inst)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func testOptions(pool string) Options {
	o := Options{LockPath: testLockPath, BundleBinary: testBinary, ReadyTimeout: 30 * time.Second}
	if pool != "" {
		o.Pool = mustPrefix(pool)
	}
	return o
}

// newDrivers returns the network driver the tests make bottle networks
// with, and the bundle driver under test.
func newDrivers(t *testing.T, api dockerAPI, opts Options) (*dockernet.NetworkDriver, *Driver) {
	t.Helper()
	nd, err := dockernet.NewNetworkDriver(api, dockernet.Options{Pool: opts.Pool, LockPath: opts.LockPath}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	bd, err := New(api, opts, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	return nd, bd
}

func networkWant(inst, bottleName string) bottle.Want {
	return dockertest.Want(inst, bottleName, bottle.RoleNetwork)
}

func bundleWant(inst, bottleName string, subnet netip.Prefix, s spec.Spec) bottle.Want {
	w := dockertest.Want(inst, bottleName, bottle.RoleBundle)
	w.Bundle = bottle.BundleInputs{Daemons: s.Daemons, Allow: s.Egress.Allow}
	w.Network = bottle.Names(bottleName, bottle.RoleNetwork)
	w.Subnet = subnet
	w.BundleAddr, w.GuestAddr = bottle.BundleAddr(subnet), bottle.GuestAddr(subnet)
	return w
}

// mine keeps the resources of instance inst (see dockertest.Mine).
func mine(rs []bottle.Resource, inst string) map[string]bottle.Resource {
	return dockertest.Mine(rs, inst)
}

// countingAPI counts the calls made through it.
type countingAPI struct {
	dockerAPI
	dockertest.Counter
}

func (c *countingAPI) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	c.Count("NetworkList")
	return c.dockerAPI.NetworkList(ctx, o)
}

func (c *countingAPI) NetworkInspect(ctx context.Context, id string, o network.InspectOptions) (network.Inspect, error) {
	c.Count("NetworkInspect")
	return c.dockerAPI.NetworkInspect(ctx, id, o)
}

func (c *countingAPI) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	c.Count("ContainerList")
	return c.dockerAPI.ContainerList(ctx, o)
}

func (c *countingAPI) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	c.Count("ContainerInspect")
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
