package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateErrors(t *testing.T) {
	sidecar := filepath.Join(t.TempDir(), "agent.smolmachine")
	if err := os.WriteFile(sidecar, []byte("pack"), 0o644); err != nil {
		t.Fatal(err)
	}
	create := func(args ...string) []string { return append([]string{"machine", "create"}, args...) }
	tests := []struct {
		name string
		env  []string
		args []string
		want want
	}{
		{"positional name as in 0.8", nil, create("myvm"),
			want{code: 2, stderr: "error: unexpected argument 'myvm' found\n", stderrPrefix: true}},
		{"positional name via vm alias", nil, []string{"vm", "create", "myvm"},
			want{code: 2, stderr: "error: unexpected argument 'myvm' found\n", stderrPrefix: true}},
		{"dot in name", nil, create("-n", "a.b"),
			want{code: 1, stderr: "Error: config operation failed: create machine: machine name contains invalid character: '.'\n"}},
		{"slash in name", nil, create("--name", "a/b"),
			want{code: 1, stderr: "Error: config operation failed: create machine: machine name contains invalid character: '/'\n"}},
		{"leading hyphen via =", nil, create("--name=_x"),
			want{code: 1, stderr: "Error: config operation failed: create machine: machine name must start with a letter or digit\n"}},
		{"trailing hyphen", nil, create("-n", "ab-"),
			want{code: 1, stderr: "Error: config operation failed: create machine: machine name cannot end with a hyphen\n"}},
		{"double hyphen", nil, create("-n", "a--b"),
			want{code: 1, stderr: "Error: config operation failed: create machine: machine name cannot contain consecutive hyphens\n"}},
		{"too long", nil, create("-n", strings.Repeat("a", 129)),
			want{code: 1, stderr: "Error: config operation failed: create machine: machine name too long: 129 characters (max 128)\n"}},
		{"invalid allow-cidr", nil, create("-n", "vm", "--allow-cidr", "x"),
			want{code: 2, stderr: "error: invalid value 'x' for '--allow-cidr <CIDR>': invalid CIDR 'x': expected format like 10.0.0.0/8 or 1.1.1.1\n\nFor more information, try '--help'.\n"}},
		{"allow-cidr prefix too long", nil, create("-n", "vm", "--allow-cidr", "10.0.0.0/33"),
			want{code: 2, stderr: "error: invalid value '10.0.0.0/33' for '--allow-cidr <CIDR>': invalid CIDR '10.0.0.0/33': expected format like 10.0.0.0/8 or 1.1.1.1\n", stderrPrefix: true}},
		{"from with image", nil, create("-n", "vm", "--from", sidecar, "-I", "alpine"),
			want{code: 2, stderr: "error: the argument '--from <PATH>' cannot be used with '--image <IMAGE>'\n", stderrPrefix: true}},
		{"from with smolfile", nil, create("-n", "vm", "-s", "x.toml", "--from", sidecar),
			want{code: 2, stderr: "error: the argument '--smolfile <PATH>' cannot be used with '--from <PATH>'\n", stderrPrefix: true}},
		{"unknown flag", nil, create("-n", "vm", "--x"),
			want{code: 2, stderr: "error: unexpected argument '--x' found\n", stderrPrefix: true}},
		{"--memory is not --mem", nil, create("-n", "vm", "--memory", "512"),
			want{code: 2, stderr: "error: unexpected argument '--memory' found\n", stderrPrefix: true}},
		{"no --no-net on create", nil, create("-n", "vm", "--no-net"),
			want{code: 2, stderr: "error: unexpected argument '--no-net' found\n", stderrPrefix: true}},
		{"name twice", nil, create("-n", "a", "-n", "b"),
			want{code: 2, stderr: "error: the argument '--name <NAME>' cannot be used multiple times\n", stderrPrefix: true}},
		{"missing value", nil, create("-n"),
			want{code: 2, stderr: "error: a value is required for '--name <NAME>' but none was supplied\n", stderrPrefix: true}},
		{"cpus not u8", nil, create("-n", "vm", "--cpus", "300"),
			want{code: 2, stderr: "error: invalid value '300' for '--cpus <CPUS>': 300 is not in 0..=255\n", stderrPrefix: true}},
		{"zero cpus", nil, create("-n", "vm", "--cpus", "0"),
			want{code: 1, stderr: "Error: config operation failed: validate resources: CPU count must be at least 1\n"}},
		{"mem below 64", nil, create("-n", "vm", "--mem", "63"),
			want{code: 1, stderr: "Error: config operation failed: validate resources: memory must be at least 64 MiB (got 63 MiB)\n"}},
		{"zero storage", nil, create("-n", "vm", "--storage", "0"),
			want{code: 1, stderr: "Error: config operation failed: validate resources: storage disk size must be greater than 0 GiB\n"}},
		{"port zero", nil, create("-n", "vm", "-p", "0"),
			want{code: 2, stderr: "error: invalid value '0' for '--port <PORT>': port 0 is not allowed\n", stderrPrefix: true}},
		{"dns not ipv4", nil, create("-n", "vm", "--dns", "::1"),
			want{code: 2, stderr: "error: invalid value '::1' for '--dns <DNS>': invalid IPv4 address syntax\n", stderrPrefix: true}},
		{"tsi with egress policy", nil, create("-n", "vm", "--net-backend", "tsi", "--allow-cidr", "1.1.1.1"),
			want{code: 1, stderr: "Error: config operation failed: egress: egress policy (--allow-cidr, --allow-host, --outbound-localhost-only) requires the virtio-net backend\n"}},
		// parse_labels runs after clap: exit 1 (util.rs 172-190).
		{"empty label key", nil, create("-n", "vm", "--label", "=v"),
			want{code: 1, stderr: "Error: config operation failed: --label: label key cannot be empty (in '=v')\n"}},
		{"label without =", nil, create("-n", "vm", "--label", "novalue"),
			want{code: 1, stderr: "Error: config operation failed: --label: expected KEY=VALUE, got 'novalue'\n"}},
		{"label before v1.8.0", []string{"SMOLVM_EMU_VERSION=1.7.0"}, create("-n", "vm", "--label", "a=b"),
			want{code: 2, stderr: "error: unexpected argument '--label' found\n", stderrPrefix: true}},
		{"missing local archive", nil, create("-n", "vm", "-I", "./nope.tar"),
			want{code: 1, stderr: "Error: config operation failed: --image: cannot read archive ./nope.tar: No such file or directory (os error 2)\n"}},
		{"missing tgz by suffix", nil, create("-n", "vm", "-I", "nope.tgz"),
			want{code: 1, stderr: "Error: config operation failed: --image: cannot read archive nope.tgz: No such file or directory (os error 2)\n"}},
		{"missing sidecar", nil, create("-n", "vm", "--from", "/nope.smolmachine"),
			want{code: 1, stderr: "Error: failed to read .smolmachine '/nope.smolmachine': file not found\n"}},
		{"registry image without network", nil, create("-n", "vm", "-I", "alpine:3"),
			want{code: 1, stderr: "Error: config operation failed: image 'alpine:3' must be pulled from a registry, which needs networking: add --net\n"}},
		{"allow-host with port", nil, create("-n", "vm", "--allow-host", "example.com:443"),
			want{code: 1, stderr: "Error: invalid --allow-host 'example.com:443': expected a hostname without a port\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			tt.want.check(t, e.runWith(tt.env, "", tt.args...))
			// A rejected create stores nothing.
			want{code: 0, stdout: "[]\n"}.check(t, e.run("machine", "ls", "--json"))
		})
	}
}

func TestCreateSuccess(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(archive, []byte("tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	sidecar := filepath.Join(t.TempDir(), "agent.smolmachine")
	if err := os.WriteFile(sidecar, []byte("pack"), 0o644); err != nil {
		t.Fatal(err)
	}
	hint := func(n string) string { return "\nStart it with: smolvm machine start --name " + n + "\n" }
	tests := []struct {
		name string
		args []string
		want want
	}{
		{"defaults", []string{"-n", "vm1"},
			want{stdout: "Created machine: vm1\n  CPUs: 4, Memory: 8192 MiB\n" + hint("vm1")}},
		{"resources", []string{"--name", "vm1", "--cpus", "2", "--mem", "512"},
			want{stdout: "Created machine: vm1\n  CPUs: 2, Memory: 512 MiB\n" + hint("vm1")}},
		// Above 16 only warns; the record keeps 40 (data/resources.rs 91-97).
		{"cpus above 16 warn", []string{"-n", "vm1", "--cpus", "40"},
			want{stdout: "Created machine: vm1\n  CPUs: 40, Memory: 8192 MiB\n" + hint("vm1"),
				stderr: "warning: requested 40 vCPUs but the hypervisor supports at most 16; the VM will run with 16 vCPUs\n"}},
		{"local archive", []string{"-n", "vm1", "-I", archive},
			want{stdout: "Created machine: vm1\n  CPUs: 4, Memory: 8192 MiB\n" + hint("vm1")}},
		{"from sidecar", []string{"-n", "vm1", "--from", sidecar, "--allow-cidr", "10.1.2.3"},
			want{stdout: "Extracting .smolmachine assets...\nCreated machine: vm1\n  CPUs: 4, Memory: 8192 MiB\n" + hint("vm1")}},
		{"registry image with net", []string{"-n", "vm1", "-I", "alpine", "--net", "--", "sleep", "infinity"},
			want{stdout: "Created machine: vm1\n  CPUs: 4, Memory: 8192 MiB\n" + hint("vm1")}},
		{"stdin image", []string{"-n", "vm1", "-I", "-"},
			want{stdout: "Created machine: vm1\n  CPUs: 4, Memory: 8192 MiB\n" + hint("vm1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmu(t)
			tt.want.check(t, e.runWith(nil, "archive-bytes", append([]string{"machine", "create"}, tt.args...)...))
			if got := e.status("vm1")["state"]; got != "created" {
				t.Errorf("state = %v, want created", got)
			}
		})
	}
}

func TestCreateAutoName(t *testing.T) {
	e := newEmu(t)
	r := e.must("vm", "create")
	name, ok := strings.CutPrefix(strings.SplitN(r.stdout, "\n", 2)[0], "Created machine: ")
	if !ok || !strings.HasPrefix(name, "vm-") || len(name) != len("vm-")+8 {
		t.Fatalf("auto name from %q", r.stdout)
	}
	if got := e.status(name)["name"]; got != name {
		t.Errorf("status name = %v, want %s", got, name)
	}
}

func TestCreateDuplicate(t *testing.T) {
	e := newEmu(t)
	e.must("machine", "create", "-n", "vm1")
	want{code: 1, stderr: "Error: config operation failed: create machine: machine 'vm1' already exists or is being created\n"}.
		check(t, e.run("machine", "create", "-n", "vm1", "--cpus", "2"))
	if got := e.status("vm1")["cpus"]; got != float64(4) {
		t.Errorf("cpus after failed duplicate = %v, want 4 (first record kept)", got)
	}
}

func TestCreateLabelsEnvAndCIDRs(t *testing.T) {
	e := newEmu(t)
	// --allow-host is resolved on the host; SMOLVM_EMU_RESOLVE stands in for DNS.
	e.env = []string{"FWD=from-host", "SMOLVM_EMU_RESOLVE=api.test=192.0.2.7"}
	e.must("machine", "create", "-n", "vm1",
		"--label", "owner=exo", "--label", "k=1", "--label", "k=2", "--label", "eq=a=b", "--label", "empty=",
		"-e", "A=1", "-e", "FWD", "-e", "UNSET_VAR", "-e", "=bad", "-e", "B=x=y",
		"--allow-cidr", "1.2.3.4", "--allow-cidr", "2001:db8::1", "--allow-cidr", "10.0.0.1/8",
		"--allow-host", "api.test", "-p", "8080:80", "-v", t.TempDir()+":/data:ro")
	m := e.status("vm1")
	labels, _ := m["labels"].(map[string]any)
	wantLabels := map[string]any{"owner": "exo", "k": "2", "eq": "a=b", "empty": ""}
	if len(labels) != len(wantLabels) {
		t.Errorf("labels = %v, want %v", labels, wantLabels)
	}
	for k, v := range wantLabels {
		if labels[k] != v {
			t.Errorf("label %s = %v, want %v", k, labels[k], v)
		}
	}
	if m["network"] != true || m["ports"] != float64(1) || m["mounts"] != float64(1) {
		t.Errorf("network/ports/mounts = %v/%v/%v, want true/1/1", m["network"], m["ports"], m["mounts"])
	}
	r := e.must("machine", "ls", "-v")
	for _, line := range []string{
		"  Env: A=1\n  Env: FWD=from-host\n  Env: B=x=y\n",
		"  Allowed CIDRs: 1.2.3.4/32, 2001:db8::1/128, 10.0.0.1/8, 192.0.2.7/32\n",
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("ls -v lacks %q:\n%s", line, r.stdout)
		}
	}
}
