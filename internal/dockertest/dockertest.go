// Package dockertest gives tests the local Docker daemon, or a clear reason
// why they cannot have it. A test that needs Docker skips without one,
// except under BOTTLE_REQUIRE_DOCKER=1 (CI sets it), where it fails: a green
// CI must mean the real-daemon tests ran.
package dockertest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// RequireEnv names the variable that turns a missing daemon into a failure.
const RequireEnv = "BOTTLE_REQUIRE_DOCKER"

// Dial returns a client of the local daemon, configured as the docker CLI is
// (DOCKER_HOST, ...), once it answers a ping; otherwise the reason.
func Dial(ctx context.Context) (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker daemon answers: %w", err)
	}
	return cli, nil
}

// Unusable ends t because the Docker daemon is missing: a skip that says
// why, or a failure when RequireEnv is 1.
func Unusable(t testing.TB, why error) {
	t.Helper()
	end(t, why, "start Docker, or ")
}

// Lacks ends a Docker-backed test because something else of the host it
// needs is missing (iptables, root for a route, a usable host address): a
// skip that says why, or, under RequireEnv=1, a failure, so a CI host
// lacking it cannot go green without the test.
func Lacks(t testing.TB, why error) {
	t.Helper()
	end(t, why, "")
}

func end(t testing.TB, why error, hint string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s=1 but the test cannot run: %v", RequireEnv, why)
	}
	t.Skipf("skipped: %v (%sset %s=1 to fail instead of skip)", why, hint, RequireEnv)
}

// Client returns a client of a daemon that answers, closed when t ends.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := Dial(context.Background())
	if err != nil {
		Unusable(t, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
