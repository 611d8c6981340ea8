package smolvm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// EngineImages is an ImageExporter that speaks the Docker Engine API over its
// unix socket with net/http. It exists because github.com/docker/docker/client
// does not build in this module until its dependencies are added to go.mod;
// only two stable, unversioned endpoints are used (GET /images/{name}/json
// and GET /images/get), so no API version negotiation is needed.
type EngineImages struct {
	http *http.Client
}

// NewEngineImages returns an EngineImages for the daemon at host, a
// "unix:///path" URL; empty means $DOCKER_HOST, then
// unix:///var/run/docker.sock. Other schemes (tcp, ssh) are refused: the
// daemon must be local for its images to be local.
func NewEngineImages(host string) (*EngineImages, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok || sock == "" {
		return nil, fmt.Errorf("smolvm: docker host %q: only unix:// sockets are supported", host)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	return &EngineImages{http: &http.Client{Transport: tr}}, nil
}

// get issues GET path against the daemon; the host part of the URL is
// ignored by the unix dialer.
func (e *EngineImages) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: "docker", Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var body struct {
		Message string `json:"message"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	err = fmt.Errorf("docker: GET %s: %s: %s", path, resp.Status, body.Message)
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %w", err, cerrdefs.ErrNotFound)
	}
	return nil, err
}

// ImageID implements ImageExporter.
func (e *EngineImages) ImageID(ctx context.Context, ref string) (string, error) {
	resp, err := e.get(ctx, "/images/"+ref+"/json", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ins struct {
		ID string `json:"Id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ins); err != nil {
		return "", fmt.Errorf("docker: decode image %q: %w", ref, err)
	}
	return ins.ID, nil
}

// SaveImage implements ImageExporter.
func (e *EngineImages) SaveImage(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := e.get(ctx, "/images/get", url.Values{"names": {id}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
