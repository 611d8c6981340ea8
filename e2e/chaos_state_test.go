package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// Faults of the state directory and of what shares the host with a bottle:
// the state directory read-only, full, corrupted or its times jumped; a
// foreign container squatting a bundle's pinned address; a foreign network
// on a subnet of the pool.

// stateFS puts the world's state directory on a small tmpfs of its own, so
// it can be filled up and made read-only without touching anything else.
func (c *chaos) stateFS() {
	if err := os.MkdirAll(c.e.state, 0o700); err != nil {
		c.t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", c.e.state).CombinedOutput(); err != nil {
		c.t.Fatalf("mount a tmpfs on the state directory: %v: %s", err, out)
	}
	c.t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", c.e.state).CombinedOutput(); err != nil {
			c.t.Errorf("unmount the state directory: %v: %s", err, out)
		}
	})
}

func (c *chaos) remountState(opt string) {
	if out, err := exec.Command("mount", "-o", "remount,"+opt, c.e.state).CombinedOutput(); err != nil {
		c.t.Fatalf("remount the state directory %s: %v: %s", opt, err, out)
	}
}

// edit changes bottle b's env (a new GEN value), so its guest must be
// replaced and a pass has work to do on it.
func (c *chaos) edit(b string) {
	c.gen++
	c.bottles[b].Env["GEN"] = fmt.Sprint(c.gen)
	c.write(b)
}

// changedSince reports the resources (by kind/name) whose IDs differ
// from before, or that are gone.
func (c *chaos) changedSince(before map[string]string) []string {
	now := c.e.ids()
	var out []string
	for k, id := range before {
		if now[k] != id {
			out = append(out, k)
		}
	}
	return out
}

func (c *chaos) stateFaults() []fault {
	return []fault{
		{"state directory read-only", func(c *chaos) string {
			b := c.pick("")
			c.edit(b)
			before := c.e.ids()
			c.remountState("ro")
			r := c.e.runNoFatal("", "--once", c.e.specs)
			c.remountState("rw")
			if r.code == 0 {
				c.t.Errorf("a pass with a read-only state directory exited 0, want a failure that says so\n%s", r)
			}
			if !strings.Contains(r.stderr, "read-only file system") {
				c.t.Errorf("a pass with a read-only state directory does not say why:\n%s", r)
			}
			if ch := c.changedSince(before); len(ch) > 0 {
				c.t.Errorf("a pass that could not take its lock changed %v", ch)
			}
			return fmt.Sprintf("env of %s edited, a pass over a read-only state directory exited %d", b, r.code)
		}},
		{"state directory full", func(c *chaos) string {
			b := c.pick("")
			c.edit(b)
			filler := filepath.Join(c.e.state, "filler")
			fill(filler)
			r := c.e.runNoFatal("", "--once", c.e.specs)
			if err := os.Remove(filler); err != nil {
				c.t.Fatal(err)
			}
			if strings.Contains(r.stderr, "panic:") {
				c.t.Errorf("a pass with a full state directory panicked:\n%s", r)
			}
			if r.code == 0 {
				c.t.Errorf("a pass that could not record what it did exited 0\n%s", r)
			}
			if !strings.Contains(r.stderr, "no space left on device") {
				c.t.Errorf("a pass with a full state directory does not say why:\n%s", r)
			}
			if left := tempFiles(c.e.state); len(left) > 0 {
				c.t.Errorf("a pass with a full state directory left temporary files: %v", left)
			}
			return fmt.Sprintf("env of %s edited, a pass over a full state directory exited %d", b, r.code)
		}},
		{"state file corrupted", func(c *chaos) string {
			files := stateFiles(c.e.state)
			if len(files) == 0 {
				return "no state file to corrupt"
			}
			f := files[c.rng.IntN(len(files))]
			garbage := [][]byte{nil, []byte("{"), []byte("\x00\x00\x00\x00"), []byte(`{"bottle": 7}`)}
			g := garbage[c.rng.IntN(len(garbage))]
			if err := os.WriteFile(f, g, 0o600); err != nil {
				c.t.Fatal(err)
			}
			return fmt.Sprintf("%s overwritten with %q", strings.TrimPrefix(f, c.e.state+"/"), g)
		}},
		{"clock jumped", func(c *chaos) string {
			// The host's clock is shared with everything on it, so the jump
			// is made where the reconciler sees it: every time it recorded
			// moves by the same offset, as if the clock had jumped since.
			offsets := []time.Duration{-365 * 24 * time.Hour, -time.Hour, time.Hour, 365 * 24 * time.Hour}
			d := offsets[c.rng.IntN(len(offsets))]
			n := shiftTimes(c.e.state, d)
			r := c.e.runNoFatal("status", "-o", "json", c.e.specs)
			if r.code != 0 {
				c.t.Errorf("status after a clock jump exited %d\n%s", r.code, r)
			}
			return fmt.Sprintf("the %d recorded times moved by %s", n, d)
		}},
		{"foreign container squats a bundle address", func(c *chaos) string {
			b := c.pick("")
			n := c.e.name(b)
			ctx, cancel := ctxT()
			defer cancel()
			addr, err := c.bundleAddr(ctx, n)
			if err != nil {
				c.t.Errorf("squat: %v", err)
				return "no bundle address to squat"
			}
			c.rmContainer(bundleName(n))
			squat := "chaos-squat-" + c.e.tag
			ct, err := docker.ContainerCreate(ctx, &container.Config{Image: c.image, Labels: map[string]string{"chaos": c.e.tag}},
				&container.HostConfig{NetworkMode: container.NetworkMode(netName(n))},
				&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
					netName(n): {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: addr.String()}},
				}}, nil, squat)
			if err != nil {
				c.t.Errorf("squat: create: %v", err)
				return "squatter not created"
			}
			defer c.rmContainer(ct.ID)
			if err := docker.ContainerStart(ctx, ct.ID, container.StartOptions{}); err != nil {
				c.t.Errorf("squat: start: %v", err)
				return "squatter not started"
			}
			r := c.e.runNoFatal("", "--once", c.e.specs)
			if r.code == 0 {
				c.t.Errorf("a pass whose bundle address is taken by a foreign container exited 0\n%s", r)
			}
			if !strings.Contains(r.stderr, addr.String()) && !strings.Contains(r.stderr, "in use") {
				c.t.Errorf("a pass whose bundle address is taken does not say so:\n%s", r)
			}
			ci, err := docker.ContainerInspect(ctx, ct.ID)
			if err != nil || ci.State == nil || !ci.State.Running {
				c.t.Errorf("the squatting foreign container was touched (%v)", err)
			}
			if c.guestRunning(b) {
				c.t.Errorf("the guest of %s runs while a foreign container holds its bundle's address %s", b, addr)
			}
			return fmt.Sprintf("the bundle of %s removed and a foreign container put at %s; a pass exited %d", b, addr, r.code)
		}},
		{"foreign network on a subnet of the pool", func(c *chaos) string {
			// The subnet a bottle just gave back is taken by a network that
			// is not ours; the bottle comes back on another one.
			b := c.pick("")
			n := c.e.name(b)
			ctx, cancel := ctxT()
			defer cancel()
			ni, err := docker.NetworkInspect(ctx, netName(n), network.InspectOptions{})
			if err != nil || len(ni.IPAM.Config) == 0 {
				c.t.Errorf("foreign network: inspect %s: %v", netName(n), err)
				return "no subnet to take"
			}
			subnet := ni.IPAM.Config[0].Subnet
			c.dropOverlap(ctx)
			c.e.remove(b)
			if r := c.e.runNoFatal("", "--once", c.e.specs); r.code != 0 {
				c.t.Errorf("tear down %s: %s", b, r)
			}
			name := "chaos-overlap-" + c.e.tag
			o, err := docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Internal: true,
				IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}}})
			if err != nil {
				c.t.Errorf("foreign network: create on %s: %v", subnet, err)
			} else {
				c.foreign["network/"+name] = o.ID
				c.t.Cleanup(func() {
					ctx, cancel := ctxT()
					defer cancel()
					if err := docker.NetworkRemove(ctx, o.ID); err != nil && !cerrdefs.IsNotFound(err) {
						c.t.Errorf("remove the foreign network in the pool: %v", err)
					}
				})
			}
			c.write(b)
			return fmt.Sprintf("%s torn down, a foreign network made on its subnet %s, its spec restored", b, subnet)
		}},
	}
}

// dropOverlap removes the foreign network an earlier fault put in the pool,
// so repeated faults never fill it.
func (c *chaos) dropOverlap(ctx context.Context) {
	k := "network/chaos-overlap-" + c.e.tag
	if id, ok := c.foreign[k]; ok {
		delete(c.foreign, k)
		if err := docker.NetworkRemove(ctx, id); err != nil {
			c.t.Errorf("remove the foreign network in the pool: %v", err)
		}
	}
}

// bundleAddr is the pinned address of bottle n's bundle: .2 of its subnet.
func (c *chaos) bundleAddr(ctx context.Context, n string) (netip.Addr, error) {
	ni, err := docker.NetworkInspect(ctx, netName(n), network.InspectOptions{})
	if err != nil || len(ni.IPAM.Config) == 0 {
		return netip.Addr{}, fmt.Errorf("inspect %s: %v", netName(n), err)
	}
	p, err := netip.ParsePrefix(ni.IPAM.Config[0].Subnet)
	if err != nil {
		return netip.Addr{}, err
	}
	return p.Masked().Addr().Next().Next(), nil
}

// guestRunning reports whether bottle b's guest runs (a paused docker
// guest does not).
func (c *chaos) guestRunning(b string) bool {
	n := c.e.name(b)
	if strings.HasPrefix(b, "d") {
		g, ok := c.e.containers()[dockerGuestName(n)]
		return ok && g.State == "running"
	}
	m, ok := c.e.machines()[guestName(n)]
	return ok && m.State == "running"
}

// fill writes zeros to path until the file system is full.
func fill(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

// tempFiles lists what writes in progress leave under dir.
func tempFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasPrefix(d.Name(), ".tmp") || strings.HasSuffix(d.Name(), ".tmp")) {
			out = append(out, strings.TrimPrefix(p, dir+"/"))
		}
		return nil
	})
	return out
}

// stateFiles lists the JSON files the reconciler keeps under dir.
func stateFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// shiftTimes moves every RFC 3339 time in the JSON files under dir by d,
// and returns how many it moved.
func shiftTimes(dir string, d time.Duration) int {
	n := 0
	for _, f := range stateFiles(dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			continue
		}
		v = shiftValue(v, d, &n)
		out, err := json.MarshalIndent(v, "", "  ")
		if err == nil && !bytes.Equal(out, b) {
			_ = os.WriteFile(f, out, 0o600)
		}
	}
	return n
}

func shiftValue(v any, d time.Duration, n *int) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = shiftValue(e, d, n)
		}
	case []any:
		for i, e := range x {
			x[i] = shiftValue(e, d, n)
		}
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			*n++
			return t.Add(d).Format(time.RFC3339Nano)
		}
	}
	return v
}
