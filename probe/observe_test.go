package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/guestio"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// observed is a driver's observation, as a fake.
type observed struct {
	rs  []bottle.Resource
	err error
}

func (o *observed) Observe(context.Context) ([]bottle.Resource, error) { return o.rs, o.err }

// fakeGuests is a guest driver whose guests hold files: CopyTo puts one
// in a directory that exists, Exec runs a file that is there.
type fakeGuests struct {
	observed
	dirs  []string            // directories every guest has
	files map[string][]string // by guest name
}

func (f *fakeGuests) CopyTo(_ context.Context, r bottle.Resource, src, dst string) error {
	if !slices.Contains(f.dirs, path.Dir(dst)) {
		return fmt.Errorf("copy to %s:%s: no directory %s", r.Name, dst, path.Dir(dst))
	}
	// A directory arrives whole, as docker cp copies it: every file in it.
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		f.files[r.Name] = append(f.files[r.Name], path.Join(dst, filepath.ToSlash(rel)))
		return nil
	})
}

func (f *fakeGuests) Exec(_ context.Context, r bottle.Resource, x guestio.Exec) (int, error) {
	if !slices.Contains(f.files[r.Name], x.Cmd[0]) {
		fmt.Fprintf(x.Stderr, "%s: not found", x.Cmd[0])
		return 127, nil
	}
	fmt.Fprintf(x.Stdout, "ran %s in %s", strings.Join(x.Cmd[1:], " "), r.Name)
	return 0, nil
}

func res(role bottle.Role, instance, name string, mod func(*bottle.Resource)) bottle.Resource {
	r := bottle.Resource{Role: role, Instance: instance, Bottle: name, Name: bottle.Names(name, role), State: bottle.StateRunning}
	if mod != nil {
		mod(&r)
	}
	return r
}

func subnetOfRes(p string) func(*bottle.Resource) {
	return func(r *bottle.Resource) { r.Subnet = netip.MustParsePrefix(p) }
}

// TestObserve: the probe finds the bottle, its bundle, its peers and its
// guest in the drivers' observation, of its own instance only, and runs
// in the guest through the guest driver.
func TestObserve(t *testing.T) {
	nets := []bottle.Resource{
		res(bottle.RoleNetwork, "i1", "a", subnetOfRes("10.9.0.0/29")),
		res(bottle.RoleNetwork, "i1", "b", subnetOfRes("10.9.0.8/29")),
		res(bottle.RoleNetwork, "i2", "c", subnetOfRes("10.9.0.16/29")), // another instance's
		res(bottle.RoleNetwork, "i1", "d", nil),                         // no subnet observed
	}
	bundles := []bottle.Resource{
		res(bottle.RoleBundle, "i1", "b", func(r *bottle.Resource) { r.Addr = netip.MustParseAddr("10.9.0.12") }),
	}
	running := res(bottle.RoleGuest, "i1", "a", nil)
	stopped := res(bottle.RoleGuest, "i1", "a", func(r *bottle.Resource) { r.State = bottle.StateStopped })
	other := res(bottle.RoleGuest, "i2", "a", nil) // same bottle name, another instance

	tests := []struct {
		name    string
		nets    observed
		guests  []bottle.Resource
		dirs    []string
		wantErr string
		notFnd  bool
		path    string // where the runner lands
	}{
		{name: "found", nets: observed{rs: nets}, guests: []bottle.Resource{other, running}, dirs: []string{"/tmp", "/"}, path: "/tmp/"},
		{name: "no /tmp in the guest", nets: observed{rs: nets}, guests: []bottle.Resource{running}, dirs: []string{"/"}, path: "/bottle-probe-"},
		{name: "no network", nets: observed{rs: nets[1:]}, guests: []bottle.Resource{running}, wantErr: `bottle "a" of instance i1: no network`, notFnd: true},
		{name: "networks unobservable", nets: observed{err: errors.New("daemon down")}, wantErr: "observe networks of instance i1: daemon down"},
		{name: "guest stopped", nets: observed{rs: nets}, guests: []bottle.Resource{stopped, other}, wantErr: `has 0 running docker guest(s)`, notFnd: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGuests{observed: observed{rs: tt.guests}, dirs: tt.dirs, files: map[string][]string{}}
			o := Options{Network: &tt.nets, Bundle: &observed{rs: bundles}, Guest: g, Instance: "i1", Bottle: "a",
				Spec: spec.Spec{Guest: spec.GuestDocker}}
			tg, gu, err := observe(context.Background(), o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("observe = %v, want an error with %q", err, tt.wantErr)
				}
				if errors.Is(err, cerrdefs.ErrNotFound) != tt.notFnd {
					t.Errorf("observe = %v: not-found %v, want %v", err, !tt.notFnd, tt.notFnd)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.Subnet.String() != "10.9.0.0/29" || tg.Gateway.String() != "10.9.0.1" || tg.Bundle.String() != "10.9.0.2" {
				t.Errorf("target subnet %s gateway %s bundle %s", tg.Subnet, tg.Gateway, tg.Bundle)
			}
			// b's bundle as observed, its guest where it is pinned.
			wantPeers := []Peer{{Bottle: "b", Bundle: netip.MustParseAddr("10.9.0.12"), Guest: netip.MustParseAddr("10.9.0.11")}}
			if !slices.Equal(tg.Peers, wantPeers) {
				t.Errorf("peers %+v, want %+v", tg.Peers, wantPeers)
			}
			if gu.String() != "container bottle-a" {
				t.Errorf("guest %s", gu)
			}
			argv, err := gu.install(context.Background(), runnerFile(t, 0o755))
			if err != nil {
				t.Fatal(err)
			}
			if len(argv) != 1 {
				t.Fatalf("a script runner installed as %q, want the file alone", argv)
			}
			bin := argv[0]
			if !strings.HasPrefix(bin, tt.path) {
				t.Errorf("runner installed at %s, want under %s", bin, tt.path)
			}
			out, err := gu.run(context.Background(), []string{bin, "probe-run", "-"})
			if err != nil || string(out) != "ran probe-run - in bottle-a" {
				t.Errorf("run = %q, %v", out, err)
			}
			if _, err := gu.run(context.Background(), []string{"/nonexistent"}); err == nil || !strings.Contains(err.Error(), "exited 127: /nonexistent: not found") {
				t.Errorf("a failing runner = %v, want its exit code and stderr", err)
			}
		})
	}
}

// runnerFile is a stand-in for the runner binary, of mode m.
func runnerFile(t *testing.T, m os.FileMode) string {
	p := filepath.Join(t.TempDir(), "runner")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), m); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInstallNeedsExecutable: the copy keeps the binary's mode, so one the
// guest could not run is refused before anything is copied, with the fix.
func TestInstallNeedsExecutable(t *testing.T) {
	g := &fakeGuests{dirs: []string{"/tmp"}, files: map[string][]string{}}
	gu := driverGuest{d: g, r: bottle.Resource{Name: "bottle-a"}, kind: spec.GuestDocker}
	_, err := gu.install(context.Background(), runnerFile(t, 0o644))
	if err == nil || !strings.Contains(err.Error(), "chmod a+x") {
		t.Errorf("install of a 0644 runner = %v, want a refusal naming the fix", err)
	}
	if len(g.files) != 0 {
		t.Errorf("copied %v", g.files)
	}
}
