package dockernet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockertest"
)

// testLabel marks the unlabelled ("foreign") resources tests make.
const testLabel = dockertest.TestLabel

// testLockPath is shared by every driver in the tests, as the real lock
// file would be.
var testLockPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dockernet-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testLockPath = filepath.Join(dir, "subnet.lock")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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

func testOptions(pool string) Options {
	o := Options{LockPath: testLockPath}
	if pool != "" {
		o.Pool = mustPrefix(pool)
	}
	return o
}

func newDriver(t *testing.T, api dockerAPI, opts Options) *NetworkDriver {
	t.Helper()
	nd, err := NewNetworkDriver(api, opts, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

func networkWant(inst, bottleName string) bottle.Want {
	return dockertest.Want(inst, bottleName, bottle.RoleNetwork)
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
