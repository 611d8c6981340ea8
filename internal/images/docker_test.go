package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

const (
	oldID = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	newID = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func noCreds(reference.Named) (string, error) { return "", nil }

func TestEnsure(t *testing.T) {
	const ref = "ghcr.io/acme/agent:1"
	tests := []struct {
		name      string
		policy    string
		local     bool // the daemon has ref (as oldID)
		remote    bool // the registry has ref (as newID)
		wantID    string
		wantPulls int
		wantErr   string
		notFound  bool
	}{
		{name: "missing, present: no pull", policy: spec.PullMissing, local: true, remote: true, wantID: oldID},
		{name: "missing, absent: pull", policy: spec.PullMissing, remote: true, wantID: newID, wantPulls: 1},
		{name: "empty policy is missing", policy: "", remote: true, wantID: newID, wantPulls: 1},
		{name: "always, present: pull the moved tag", policy: spec.PullAlways, local: true, remote: true, wantID: newID, wantPulls: 1},
		{name: "never, present", policy: spec.PullNever, local: true, remote: true, wantID: oldID},
		{name: "never, absent: no pull", policy: spec.PullNever, remote: true, wantErr: `image "ghcr.io/acme/agent:1" is not in the host's Docker daemon and spec.pullPolicy is never`, notFound: true},
		{name: "absent everywhere", policy: spec.PullMissing, wantPulls: 1, wantErr: `pull image "ghcr.io/acme/agent:1": registry answered: manifest unknown`},
		{name: "bad policy", policy: "IfNotPresent", local: true, wantErr: `pull policy "IfNotPresent" is not one of missing, always, never`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{ids: map[string]string{}, remote: map[string]string{}}
			if tt.local {
				api.ids[ref] = oldID
			}
			if tt.remote {
				api.remote["ghcr.io/acme/agent:1"] = newID
			}
			d := New(api, noCreds, testr.New(t))
			id, err := d.Ensure(context.Background(), ref, tt.policy)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Ensure error = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.notFound && !cerrdefs.IsNotFound(err) {
					t.Errorf("error %v is not a not-found", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if id != tt.wantID {
				t.Errorf("ID = %q, want %q", id, tt.wantID)
			}
			if len(api.pulls) != tt.wantPulls {
				t.Errorf("%d pulls, want %d", len(api.pulls), tt.wantPulls)
			}
		})
	}
}

// The daemon is asked for the normalised name, with the credentials the
// host has for the image's registry, which never reach the log.
func TestEnsurePassesCredentials(t *testing.T) {
	api := &fakeAPI{remote: map[string]string{"docker.io/library/busybox:latest": newID}}
	var asked []string
	creds := func(r reference.Named) (string, error) {
		asked = append(asked, reference.Domain(r))
		return "ENCODED-SECRET", nil
	}
	api.ids = map[string]string{}
	// The fake records the ref pulled; inspect after the pull uses the
	// spec's ref, so the daemon has both names afterwards.
	d := New(&aliasAPI{fakeAPI: api, alias: map[string]string{"busybox": "docker.io/library/busybox:latest"}}, creds, testr.New(t))
	if _, err := d.Ensure(context.Background(), "busybox", spec.PullMissing); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, []string{"docker.io"}) {
		t.Errorf("credentials asked for %q, want docker.io", asked)
	}
	if !slices.Equal(api.pulled, []string{"docker.io/library/busybox:latest"}) || api.pulls[0].RegistryAuth != "ENCODED-SECRET" {
		t.Errorf("pulled %q with auth %q", api.pulled, api.pulls[0].RegistryAuth)
	}
}

// aliasAPI answers inspect of a short name as the daemon does: by its
// normalised one.
type aliasAPI struct {
	*fakeAPI
	alias map[string]string
}

func (a *aliasAPI) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	if full, ok := a.alias[ref]; ok {
		ref = full
	}
	return a.fakeAPI.ImageInspect(ctx, ref)
}

func TestEnsureErrors(t *testing.T) {
	down := fmt.Errorf("Cannot connect to the Docker daemon: %w", cerrdefs.ErrUnavailable)
	tests := []struct {
		name    string
		api     *fakeAPI
		creds   Credentials
		wantErr string
		is      func(error) bool
	}{
		{name: "daemon refuses the pull", api: &fakeAPI{pullErr: fmt.Errorf("pull access denied for 127.0.0.1:5000/x, repository does not exist: %w", cerrdefs.ErrNotFound)},
			wantErr: `pull image "ghcr.io/acme/agent:1": registry answered: pull access denied`, is: cerrdefs.IsNotFound},
		{name: "failure in the stream", api: &fakeAPI{pullStream: `{"status":"a"}{"error":"unauthorized: authentication required"}`},
			wantErr: "registry answered: unauthorized: authentication required", is: func(err error) bool { return errors.Is(err, errPullFailed) }},
		{name: "garbled stream", api: &fakeAPI{pullStream: `{"status":`}, wantErr: "read pull progress"},
		{name: "credentials unreadable", api: &fakeAPI{}, creds: func(reference.Named) (string, error) { return "", errors.New("config.json: bad JSON") },
			wantErr: `pull image "ghcr.io/acme/agent:1": config.json: bad JSON`},
		{name: "daemon down on inspect", api: &fakeAPI{}, wantErr: "inspect image", is: cerrdefs.IsUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := tt.creds
			if creds == nil {
				creds = noCreds
			}
			var api API = tt.api
			if tt.name == "daemon down on inspect" {
				api = downAPI{tt.api, down}
			}
			_, err := New(api, creds, testr.New(t)).Ensure(context.Background(), "ghcr.io/acme/agent:1", spec.PullMissing)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.is != nil && !tt.is(err) {
				t.Errorf("error %v lost its class", err)
			}
		})
	}
}

// downAPI fails every inspect with err.
type downAPI struct {
	*fakeAPI
	err error
}

func (d downAPI) ImageInspect(context.Context, string, ...client.ImageInspectOption) (image.InspectResponse, error) {
	return image.InspectResponse{}, d.err
}
