package dockerguest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bottle-reconcile/bottle-reconcile/internal/procroute"
)

// fakeDocker keeps containers in a map by name. It understands the label
// and id filters the driver uses.
type fakeDocker struct {
	mu         sync.Mutex
	images     map[string]bool
	remote     map[string]bool // what ImagePull can fetch
	containers map[string]*fakeContainer
	failOn     map[string]error // by method name
	calls      []string
	log        *[]string // shared call log, when set
	lastHost   *container.HostConfig
	lastConfig *container.Config
	lastNet    *network.NetworkingConfig
	nextID     int
	net        *fakeNet // given each started container's fresh routes
}

type fakeContainer struct {
	id, name string
	labels   map[string]string
	state    container.ContainerState
	network  string
	addr     string
	pid      int
	// removing: another client's removal is under way; a remove is
	// refused as Docker refuses it, and a wait sees it finish.
	removing bool
}

var _ dockerAPI = (*fakeDocker)(nil)

func newFakeDocker(images ...string) *fakeDocker {
	f := &fakeDocker{images: map[string]bool{}, containers: map[string]*fakeContainer{}}
	for _, i := range images {
		f.images[i] = true
	}
	return f
}

func (f *fakeDocker) call(name string) error {
	f.calls = append(f.calls, name)
	if f.log != nil {
		*f.log = append(*f.log, name)
	}
	return f.failOn[name]
}

func (f *fakeDocker) find(ref string) *fakeContainer {
	for _, c := range f.containers {
		if c.id == ref || c.name == ref {
			return c
		}
	}
	return nil
}

func notFound(what string) error { return fmt.Errorf("no such %s: %w", what, cerrdefs.ErrNotFound) }

func (f *fakeDocker) ContainerList(_ context.Context, o container.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContainerList"); err != nil {
		return nil, err
	}
	var out []container.Summary
	for _, c := range f.containers {
		ok := true
		for _, l := range o.Filters.Get("label") {
			k, v, _ := strings.Cut(l, "=")
			if c.labels[k] != v {
				ok = false
			}
		}
		for _, id := range o.Filters.Get("id") {
			ok = ok && c.id == id
		}
		if !ok {
			continue
		}
		s := container.Summary{ID: c.id, Names: []string{"/" + c.name}, Labels: c.labels, State: c.state}
		ep := &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: c.addr}}
		if c.state == container.StateRunning {
			ep.IPAddress = c.addr
		}
		s.NetworkSettings = &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{c.network: ep}}
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeDocker) ContainerInspect(_ context.Context, ref string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContainerInspect"); err != nil {
		return container.InspectResponse{}, err
	}
	c := f.find(ref)
	if c == nil {
		return container.InspectResponse{}, notFound("container")
	}
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.id, Name: "/" + c.name,
			State: &container.State{Running: c.state == container.StateRunning || c.state == container.StatePaused,
				Paused: c.state == container.StatePaused, Pid: c.pid}},
		Config: &container.Config{Labels: c.labels},
	}, nil
}

func (f *fakeDocker) ContainerCreate(_ context.Context, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, _ *ocispec.Platform, name string) (container.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContainerCreate"); err != nil {
		return container.CreateResponse{}, err
	}
	if f.find(name) != nil {
		return container.CreateResponse{}, fmt.Errorf("name in use: %w", cerrdefs.ErrConflict)
	}
	f.lastConfig, f.lastHost, f.lastNet = cfg, hc, nc
	f.nextID++
	c := &fakeContainer{id: fmt.Sprintf("id%d", f.nextID), name: name, labels: cfg.Labels, state: container.StateCreated}
	for n, ep := range nc.EndpointsConfig {
		c.network, c.addr = n, ep.IPAMConfig.IPv4Address
	}
	f.containers[name] = c
	return container.CreateResponse{ID: c.id}, nil
}

func (f *fakeDocker) ContainerStart(_ context.Context, ref string, _ container.StartOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContainerStart"); err != nil {
		return err
	}
	c := f.find(ref)
	if c == nil {
		return notFound("container")
	}
	c.state = container.StateRunning
	f.nextID++
	c.pid = 1000 + f.nextID
	if f.net != nil {
		f.net.boot(c.id, c.pid, c.addr)
	}
	return nil
}

func (f *fakeDocker) ContainerPause(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContainerPause"); err != nil {
		return err
	}
	c := f.find(ref)
	switch {
	case c == nil:
		return notFound("container")
	case c.state != container.StateRunning:
		return fmt.Errorf("container %s is not running: %w", c.name, cerrdefs.ErrConflict)
	}
	c.state = container.StatePaused
	return nil
}

func (f *fakeDocker) ContainerUnpause(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContainerUnpause"); err != nil {
		return err
	}
	c := f.find(ref)
	switch {
	case c == nil:
		return notFound("container")
	case c.state != container.StatePaused:
		return fmt.Errorf("container %s is not paused: %w", c.name, cerrdefs.ErrConflict)
	}
	c.state = container.StateRunning
	return nil
}

func (f *fakeDocker) ContainerRemove(_ context.Context, ref string, _ container.RemoveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContainerRemove"); err != nil {
		return err
	}
	c := f.find(ref)
	if c == nil {
		return notFound("container")
	}
	if c.removing {
		return fmt.Errorf("Error response from daemon: removal of container %s is already in progress: %w", c.id, cerrdefs.ErrConflict)
	}
	delete(f.containers, c.name)
	return nil
}

func (f *fakeDocker) ContainerWait(_ context.Context, ref string, cond container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	done, errc := make(chan container.WaitResponse, 1), make(chan error, 1)
	if err := f.call("ContainerWait"); err != nil {
		errc <- err
		return done, errc
	}
	c := f.find(ref)
	switch {
	case c == nil:
		errc <- notFound("container")
	case cond != container.WaitConditionRemoved || !c.removing:
		errc <- fmt.Errorf("fake: a wait for %q on %s would block", cond, c.name)
	default:
		delete(f.containers, c.name) // the other removal finishes
		done <- container.WaitResponse{}
	}
	return done, errc
}

func (f *fakeDocker) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ImageInspect"); err != nil {
		return image.InspectResponse{}, err
	}
	if !f.images[ref] {
		return image.InspectResponse{}, notFound("image: " + ref)
	}
	return image.InspectResponse{ID: "sha256:" + ref}, nil
}

// ImagePull adds a ref of remote to the daemon's images; any other answers
// as a registry without it does, inside the progress stream.
func (f *fakeDocker) ImagePull(_ context.Context, ref string, _ image.PullOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ImagePull"); err != nil {
		return nil, err
	}
	short := strings.TrimPrefix(ref, "docker.io/library/")
	if !f.remote[short] {
		return io.NopCloser(strings.NewReader(`{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`)), nil
	}
	f.images[short] = true
	return io.NopCloser(strings.NewReader(`{"status":"Downloaded newer image"}`)), nil
}

var errBoom = errors.New("boom")

// fakeNet holds the routing table of each running fake container, by pid,
// and applies the `ip -batch` lines the driver sends.
type fakeNet struct {
	mu      sync.Mutex
	tables  map[int][]procroute.Route
	pids    map[string]int // init pid by container ID
	batches [][]string
	failOn  map[string]error // "routes" or "apply"
	log     *[]string
}

func newFakeNet() *fakeNet {
	return &fakeNet{tables: map[int][]procroute.Route{}, pids: map[string]int{}}
}

// boot gives container id, running as pid, the routes Docker gives a
// container at addr on a /29.
func (f *fakeNet) boot(id string, pid int, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pids[id] = pid
	a := netip.MustParseAddr(addr)
	p := netip.PrefixFrom(a, 29).Masked()
	f.tables[pid] = []procroute.Route{
		{Dev: "eth0", Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: p.Addr().Next()},
		{Dev: "eth0", Dst: p},
	}
}

// halt forgets the pid of container id, as a stop does.
func (f *fakeNet) halt(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pids, id)
}

func (f *fakeNet) netPID(id string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.log != nil {
		*f.log = append(*f.log, "netPID")
	}
	if err := f.failOn["netPID"]; err != nil {
		return 0, err
	}
	pid, ok := f.pids[id]
	if !ok {
		return 0, fmt.Errorf("container %s: no init process", id)
	}
	return pid, nil
}

func (f *fakeNet) routes(_ context.Context, pid int) ([]procroute.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.log != nil {
		*f.log = append(*f.log, "routes")
	}
	if err := f.failOn["routes"]; err != nil {
		return nil, err
	}
	rs, ok := f.tables[pid]
	if !ok {
		return nil, fmt.Errorf("no process %d", pid)
	}
	return slices.Clone(rs), nil
}

func (f *fakeNet) apply(_ context.Context, pid int, batch []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.log != nil {
		*f.log = append(*f.log, "apply")
	}
	f.batches = append(f.batches, batch)
	if err := f.failOn["apply"]; err != nil {
		return err
	}
	rs := f.tables[pid]
	for _, line := range batch {
		w := strings.Fields(line)
		if len(w) < 5 || w[0] != "route" || w[3] != "dev" {
			return fmt.Errorf("fake ip: cannot parse %q", line)
		}
		p, err := netip.ParsePrefix(w[2])
		if err != nil {
			return fmt.Errorf("fake ip: %q: %v", line, err)
		}
		i := slices.IndexFunc(rs, func(r procroute.Route) bool { return r.Dst == p && r.Dev == w[4] })
		switch w[1] {
		case "replace":
			if i >= 0 {
				rs = slices.Delete(rs, i, i+1)
			}
			rs = append(rs, procroute.Route{Dev: w[4], Dst: p})
		case "del":
			if i < 0 {
				return fmt.Errorf("fake ip: %q: no such route", line)
			}
			rs = slices.Delete(rs, i, i+1)
		default:
			return fmt.Errorf("fake ip: %q: unknown verb", line)
		}
	}
	f.tables[pid] = rs
	return nil
}
