package probe

import (
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// A docker guest's mountinfo: overlay root, Docker's own files, and a
// workspace bind of a host ext4 directory at /work.
const mountinfoWith = `500 400 0:50 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l
501 500 0:51 / /proc rw,nosuid - proc proc rw
502 500 8:1 /var/lib/docker/containers/x/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw
503 500 8:1 /var/lib/docker/containers/x/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw
504 500 8:1 /var/lib/docker/containers/x/hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw
`

func mounts(work string) []mountLine { return parseMountinfo(mountinfoWith + work) }

// The positive and negative twins: the workspace check passes only when
// the workspace is mounted as the spec says, and the mounts check allows
// only the workspace.
func TestWorkspaceProbe(t *testing.T) {
	const (
		rw    = "505 500 8:1 /srv/w /work rw,relatime - ext4 /dev/sda1 rw\n"
		ro    = "505 500 8:1 /srv/w /work ro,relatime - ext4 /dev/sda1 rw\n"
		other = "506 500 8:1 /home /home rw,relatime - ext4 /dev/sda1 rw\n"
		vfs   = "505 500 0:60 / /work ro,relatime - virtiofs smolvm0 rw\n"
	)
	tests := []struct {
		name     string
		mounts   string
		readOnly bool
		reached  bool
		observed string
	}{
		{"read-write as asked", rw, false, true, "mounted read-write"},
		{"read-only as asked", ro, true, true, "mounted read-only"},
		{"smolvm's virtiofs read-only", vfs, true, true, "mounted read-only"},
		{"not mounted", "", false, false, "NOT MOUNTED"},
		{"elsewhere only", other, false, false, "NOT MOUNTED"},
		{"writable when read-only asked", rw, true, false, "WRITABLE"},
		{"read-only when read-write asked", ro, false, false, "READ-ONLY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := judgeWorkspace(mounts(tt.mounts), Check{Kind: KindWorkspace, Paths: []string{"/work"}, ReadOnly: tt.readOnly})
			if o.Reached != tt.reached || o.Observed != tt.observed {
				t.Errorf("workspace check: reached %v %q, want %v %q", o.Reached, o.Observed, tt.reached, tt.observed)
			}
		})
	}

	mountTests := []struct {
		name    string
		mounts  string
		allowed []string
		reached bool
	}{
		{"nothing mounted", "", nil, false},
		{"workspace allowed", rw, []string{"/work"}, false},
		{"workspace without a spec", rw, nil, true},
		{"another host path beside it", rw + other, []string{"/work"}, true},
		{"another path allowed instead", rw, []string{"/src"}, true},
	}
	for _, tt := range mountTests {
		t.Run("mounts: "+tt.name, func(t *testing.T) {
			o := judgeMounts(mounts(tt.mounts), tt.allowed)
			if o.Reached != tt.reached {
				t.Errorf("mounts check: reached %v (%s), want %v", o.Reached, o.Observed, tt.reached)
			}
		})
	}
}

// The plan has the workspace checks exactly when the spec has one, and
// then allows that mount and no other.
func TestWorkspacePlan(t *testing.T) {
	find := func(p Plan) (ws, mnt *Check) {
		for i, c := range p.Checks {
			switch c.Kind {
			case KindWorkspace:
				ws = &p.Checks[i]
			case KindMounts:
				mnt = &p.Checks[i]
			}
		}
		return ws, mnt
	}
	tgt := testTarget()
	if ws, mnt := find(BuildPlan(tgt)); ws != nil || mnt == nil || len(mnt.Paths) != 0 {
		t.Fatalf("without a workspace: workspace check %+v, mounts check %+v", ws, mnt)
	}
	tgt.Workspace = &spec.Workspace{HostPath: "/srv/w", GuestPath: "/work", ReadOnly: true}
	ws, mnt := find(BuildPlan(tgt))
	if ws == nil || ws.Expect != Allowed || !ws.ReadOnly || strings.Join(ws.Paths, " ") != "/work" || !strings.Contains(ws.Name, "read-only") {
		t.Fatalf("workspace check %+v", ws)
	}
	if mnt == nil || mnt.Expect != Blocked || strings.Join(mnt.Paths, " ") != "/work" {
		t.Fatalf("mounts check %+v", mnt)
	}
}
