package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// countingProxy is a reverse proxy from a unix socket of its own to the
// Docker socket that counts requests by method and path: pointing a
// process's DOCKER_HOST at it shows every API call the process makes.
type countingProxy struct {
	sock string
	ln   net.Listener
	srv  *http.Server

	mu     sync.Mutex
	counts map[string]int
}

// startCountingProxy listens on sock and forwards to the unix socket
// upstream.
func startCountingProxy(sock, upstream string) (*countingProxy, error) {
	_ = os.Remove(sock) // a stale socket of an earlier run
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("counting proxy: listen on %s: %w", sock, err)
	}
	p := &countingProxy{sock: sock, ln: ln, counts: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", upstream)
		}},
		// Streams (build output, events, logs) pass through as they come.
		FlushInterval: -1,
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count(r.Method + " " + stripVersion(r.URL.Path))
		rp.ServeHTTP(w, r)
	})}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "bottle-bench: counting proxy: %v\n", err)
		}
	}()
	return p, nil
}

func (p *countingProxy) count(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[key]++
}

// env is the environment that sends a Docker client through the proxy.
func (p *countingProxy) env() []string { return []string{"DOCKER_HOST=unix://" + p.sock} }

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
}

// snapshot returns the counts since the last reset.
func (p *countingProxy) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

func (p *countingProxy) close() error {
	err := p.srv.Close()
	_ = os.Remove(p.sock)
	return err
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+(\.[0-9]+)?/`)

// stripVersion drops the API version ("/v1.41") so calls of clients that
// negotiated different versions count alike.
func stripVersion(path string) string { return versionPrefix.ReplaceAllString(path, "/") }

// fixedSegment lists the second path segments that name an endpoint rather
// than an object (GET /containers/json, POST /networks/create, ...).
var fixedSegment = map[string]bool{"json": true, "create": true, "prune": true, "build": true, "load": true, "search": true, "get": true}

// endpoint turns a counted "METHOD /path" into its endpoint, with object IDs
// and names replaced: GET /containers/3f2a.../json is GET /containers/{id}/json.
func endpoint(key string) string {
	method, path, _ := strings.Cut(key, " ")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(parts) < 2 || fixedSegment[parts[1]]:
	case parts[0] == "images":
		// Image names may hold slashes: keep only the action at the end.
		if len(parts) > 2 {
			parts = []string{"images", "{name}", parts[len(parts)-1]}
		} else {
			parts = []string{"images", "{name}"}
		}
	case parts[0] == "containers" || parts[0] == "networks" || parts[0] == "exec" || parts[0] == "volumes":
		parts[1] = "{id}"
	}
	return method + " /" + strings.Join(parts, "/")
}

// apiCount is one endpoint's share of a set of calls.
type apiCount struct {
	Endpoint string `json:"endpoint"`
	Calls    int    `json:"calls"`
}

// byEndpoint sums counts per endpoint, most called first, and their total.
func byEndpoint(counts map[string]int) ([]apiCount, int) {
	sum, total := map[string]int{}, 0
	for k, n := range counts {
		sum[endpoint(k)] += n
		total += n
	}
	out := make([]apiCount, 0, len(sum))
	for e, n := range sum {
		out = append(out, apiCount{Endpoint: e, Calls: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out, total
}

// dockerSocket is the socket the Docker CLI would use: DOCKER_HOST when it
// is a unix socket, else the default.
func dockerSocket() string {
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok && h != "" {
		return h
	}
	return "/var/run/docker.sock"
}
