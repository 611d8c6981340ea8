package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// TestLabel marks the unlabelled ("foreign") resources tests make, set to
// the test's instance, so they are cleaned up too; it is not a
// bottle-reconcile label.
const TestLabel = "test.bottle-reconcile.run"

// Instance returns a unique instance name and makes sure no container or
// network labelled with it (as instance or TestLabel) outlives the test.
func Instance(t testing.TB, cli *client.Client) string {
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
		AssertNoneLeft(t, cli, inst)
	})
	return inst
}

// leftovers lists what carries inst as instance or test label.
func leftovers(ctx context.Context, t testing.TB, cli *client.Client, inst string) ([]container.Summary, []network.Summary) {
	t.Helper()
	var cs []container.Summary
	var nets []network.Summary
	for _, key := range []string{bottle.LabelInstance, TestLabel} {
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

// AssertNoneLeft fails the test if any container or network of inst
// remains.
func AssertNoneLeft(t testing.TB, cli *client.Client, inst string) {
	t.Helper()
	cs, nets := leftovers(context.Background(), t, cli, inst)
	for _, c := range cs {
		t.Errorf("container %s of %s left behind", c.Names, inst)
	}
	for _, n := range nets {
		t.Errorf("network %s of %s left behind", n.Name, inst)
	}
}
