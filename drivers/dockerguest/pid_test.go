package dockerguest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNetPID(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name   string
		layout string            // cgroup dir of the container, "" for none
		procs  string            // its cgroup.procs
		status map[string]string // pid -> NSpid line
		pidns  map[string]string // pid (or "self") -> its ns/pid link
		netns  map[string]string // pid (or "self") -> its ns/net link
		want   int
		err    string // "" for none, "unknown" for errPIDUnknown
	}{
		{"cgroup v1 cgroupfs", "pids/docker/" + id, "4711\n4712\n", map[string]string{"4711": "NSpid:\t4711\t1", "4712": "NSpid:\t4712\t7"}, nil, nil, 4711, ""},
		{"init not listed first", "pids/docker/" + id, "4712\n4711\n", map[string]string{"4711": "NSpid:\t4711\t1", "4712": "NSpid:\t4712\t7"}, nil, nil, 4711, ""},
		{"cgroup v2 systemd", "system.slice/docker-" + id + ".scope", "900\n", map[string]string{"900": "NSpid:\t900\t1"}, nil, nil, 900, ""},
		{"cgroup v2 cgroupfs", "docker/" + id, "901\n", map[string]string{"901": "NSpid:\t901\t1"}, nil, nil, 901, ""},
		{"no cgroup: ask Docker", "", "", nil, nil, nil, 0, "unknown"},
		{"one process in its own pid namespace", "docker/" + id, "902\n", nil, map[string]string{"self": "pid:[4026531836]", "902": "pid:[4026532999]"}, nil, 902, ""},
		{"one process in the host's pid namespace", "docker/" + id, "903\n", map[string]string{"903": "NSpid:\t903"}, map[string]string{"self": "pid:[4026531836]", "903": "pid:[4026531836]"}, nil, 0, "has no init process"},
		{"a host process is not an init", "docker/" + id, "1\n", map[string]string{"1": "NSpid:\t1"}, nil, nil, 0, "has no init process"},
		{"stopped: no processes", "docker/" + id, "", nil, nil, nil, 0, "has no init process"},
		// Processes that share a network namespace: the first is as good
		// as the init, with no status read (none is written here).
		{"shared network namespace", "docker/" + id, "4712\n4711\n", nil, nil, map[string]string{"self": "net:[4026531840]", "4711": "net:[4026532001]", "4712": "net:[4026532001]"}, 4712, ""},
		{"network namespaces differ: the init", "docker/" + id, "4712\n4711\n", map[string]string{"4711": "NSpid:\t4711\t1", "4712": "NSpid:\t4712\t7"}, nil, map[string]string{"self": "net:[4026531840]", "4711": "net:[4026532001]", "4712": "net:[4026532002]"}, 4711, ""},
		{"the host's network namespace: the init", "docker/" + id, "4712\n4711\n", map[string]string{"4711": "NSpid:\t4711\t1", "4712": "NSpid:\t4712\t7"}, nil, map[string]string{"self": "net:[4026531840]", "4711": "net:[4026531840]", "4712": "net:[4026531840]"}, 4711, ""},
		{"a process gone since the list: the init", "docker/" + id, "4712\n4711\n", map[string]string{"4711": "NSpid:\t4711\t1"}, nil, map[string]string{"self": "net:[4026531840]", "4711": "net:[4026532001]"}, 4711, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, proc := t.TempDir(), t.TempDir()
			if tt.layout != "" {
				dir := filepath.Join(root, tt.layout)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(tt.procs), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for pid, ns := range tt.status {
				if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(proc, pid, "status"), []byte("Name:\tsh\n"+ns+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for kind, links := range map[string]map[string]string{"pid": tt.pidns, "net": tt.netns} {
				for pid, link := range links {
					if err := os.MkdirAll(filepath.Join(proc, pid, "ns"), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.Symlink(link, filepath.Join(proc, pid, "ns", kind)); err != nil {
						t.Fatal(err)
					}
				}
			}
			c := newCgroupPIDs(root, proc)
			for range 2 { // the second time through the remembered layout
				pid, err := c.netPID(id)
				switch {
				case tt.err == "unknown" && !errors.Is(err, errPIDUnknown):
					t.Fatalf("netPID = %d, %v; want errPIDUnknown", pid, err)
				case tt.err != "" && tt.err != "unknown" && (err == nil || !strings.Contains(err.Error(), tt.err)):
					t.Fatalf("netPID = %d, %v; want an error with %q", pid, err, tt.err)
				case tt.err == "" && (err != nil || pid != tt.want):
					t.Fatalf("netPID = %d, %v; want %d", pid, err, tt.want)
				}
			}
		})
	}
	if _, err := newCgroupPIDs(t.TempDir(), t.TempDir()).netPID("../../etc"); !errors.Is(err, errPIDUnknown) {
		t.Errorf("netPID of a path = %v, want errPIDUnknown", err)
	}
}
