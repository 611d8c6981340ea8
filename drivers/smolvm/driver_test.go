package smolvm

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Secret values used in wants; no argv, label or error may contain them.
const (
	secretToken = "tok-9f8e7d6c5b4a"
	secretHost  = "host-secret-31337"
)

// testWant is a guest Want as the reconciler resolves it: two spec.env
// variables, a host secret from envFromHost and the bundle's proxy settings.
func testWant() bottle.Want {
	w := bottle.Want{
		Bottle: "alice",
		Role:   bottle.RoleGuest,
		Name:   "bottle-alice",
		Labels: ourLabels("alice", "host-a", "3f2a"),
		Guest: bottle.GuestInputs{
			Kind:       spec.GuestSmolvm,
			Image:      "ghcr.io/org/agent:1",
			Daemons:    []string{spec.DaemonEgress, spec.DaemonDNS},
			AllowCIDRs: []string{"203.0.113.0/24"},
			CPUs:       2, MemoryMiB: 2048,
		},
		Network:    "bottle-alice",
		Subnet:     netip.MustParsePrefix("10.77.0.0/29"),
		BundleAddr: netip.MustParseAddr("10.77.0.2"),
		GuestAddr:  netip.MustParseAddr("10.77.0.3"),
	}
	withEnv(&w, map[string]string{"API_TOKEN": secretToken, "EMPTY": ""}, map[string]string{"GH_TOKEN": secretHost})
	return w
}

// withEnv sets w's environment as the reconciler resolves it for w's
// daemons and bundle address: env from the spec, host values, and the
// bundle's proxy settings, sorted by name.
func withEnv(w *bottle.Want, env, host map[string]string) {
	w.Guest.Env = nil
	add := func(m map[string]string, src bottle.EnvSource) {
		for k, v := range m {
			w.Guest.Env = append(w.Guest.Env, bottle.EnvVar{Name: k, Source: src, Value: v})
		}
	}
	add(env, bottle.EnvFromSpec)
	add(host, bottle.EnvFromHost)
	add(bundle.GuestEnv(w.Guest.Daemons, w.BundleAddr), bottle.EnvFromBundle)
	slices.SortFunc(w.Guest.Env, func(a, b bottle.EnvVar) int { return strings.Compare(a.Name, b.Name) })
}

func hostEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// labelArgs is testWant's --label flags, with the host layer's: the
// daemons the guest reaches and its allowCIDRs.
func labelArgs(reach, allow string) string {
	return "--label dev.bottle-reconcile.allow=" + allow + " --label dev.bottle-reconcile.bottle=alice " +
		"--label dev.bottle-reconcile.bundle-addr=10.77.0.2 --label dev.bottle-reconcile.hash=3f2a " +
		"--label dev.bottle-reconcile.hash-version=1 --label dev.bottle-reconcile.instance=host-a " +
		"--label dev.bottle-reconcile.managed-by=bottle-reconcile --label dev.bottle-reconcile.reach=" + reach +
		" --label dev.bottle-reconcile.role=guest"
}

func TestCreateArgv(t *testing.T) {
	proxyEnv := "-e HTTPS_PROXY=http://10.77.0.2:3128 -e HTTP_PROXY=http://10.77.0.2:3128 -e NO_PROXY=localhost,127.0.0.1,::1"
	proxyLower := "-e http_proxy=http://10.77.0.2:3128 -e https_proxy=http://10.77.0.2:3128 -e no_proxy=localhost,127.0.0.1,::1"
	tests := []struct {
		name      string
		edit      func(*bottle.Want)
		wantArgv  string
		wantChild []string
	}{
		{
			name: "egress and dns",
			wantArgv: "machine create --name bottle-alice " + labelArgs("egress,dns", "203.0.113.0/24") +
				" --image ghcr.io/org/agent:1 --cpus 2 --mem 2048" +
				" --allow-cidr 10.77.0.2/32 --allow-cidr 203.0.113.0/24 --dns 10.77.0.2" +
				" -e API_TOKEN -e EMPTY -e GH_TOKEN " + proxyEnv + " " + proxyLower,
			wantChild: []string{"API_TOKEN=" + secretToken, "EMPTY=", "GH_TOKEN=" + secretHost},
		},
		{
			name: "no daemons: no dns, no proxy, only the bundle allowed",
			edit: func(w *bottle.Want) {
				w.Guest.Daemons = []string{}
				w.Guest.AllowCIDRs = nil
				withEnv(w, nil, nil)
			},
			// --dns even without a resolver: smolvm would forward DNS to
			// 1.1.1.1 otherwise.
			wantArgv: "machine create --name bottle-alice " + labelArgs("", "") +
				" --image ghcr.io/org/agent:1 --cpus 2 --mem 2048 --allow-cidr 10.77.0.2/32 --dns 10.77.0.2",
		},
		{
			name: "workspace read-only",
			edit: func(w *bottle.Want) {
				w.Guest.Daemons = []string{}
				w.Guest.AllowCIDRs = nil
				withEnv(w, nil, nil)
				w.Guest.Workspace = &spec.Workspace{HostPath: "/srv/bottles/alice", GuestPath: "/work", ReadOnly: true}
			},
			wantArgv: "machine create --name bottle-alice " + labelArgs("", "") +
				" --image ghcr.io/org/agent:1 --cpus 2 --mem 2048 --allow-cidr 10.77.0.2/32 --dns 10.77.0.2 -v /srv/bottles/alice:/work:ro",
		},
		{
			name: "workspace read-write",
			edit: func(w *bottle.Want) {
				w.Guest.Daemons = []string{}
				w.Guest.AllowCIDRs = nil
				withEnv(w, nil, nil)
				w.Guest.Workspace = &spec.Workspace{HostPath: "/srv/bottles/alice", GuestPath: "/work"}
			},
			wantArgv: "machine create --name bottle-alice " + labelArgs("", "") +
				" --image ghcr.io/org/agent:1 --cpus 2 --mem 2048 --allow-cidr 10.77.0.2/32 --dns 10.77.0.2 -v /srv/bottles/alice:/work",
		},
		{
			name: "dns only",
			edit: func(w *bottle.Want) {
				w.Guest.Daemons = []string{spec.DaemonDNS}
				withEnv(w, nil, nil)
				w.Guest.CPUs, w.Guest.MemoryMiB = 1, 512
			},
			wantArgv: "machine create --name bottle-alice " + labelArgs("dns", "203.0.113.0/24") +
				" --image ghcr.io/org/agent:1 --cpus 1 --mem 512 --allow-cidr 10.77.0.2/32" +
				" --allow-cidr 203.0.113.0/24 --dns 10.77.0.2",
		},
		{
			name: "egress only",
			edit: func(w *bottle.Want) {
				w.Guest.Daemons = []string{spec.DaemonEgress}
				w.Guest.AllowCIDRs = nil
				withEnv(w, map[string]string{"LIBRARY": "/opt/lib", "Z": "last"}, nil)
			},
			wantArgv: "machine create --name bottle-alice " + labelArgs("egress", "") +
				" --image ghcr.io/org/agent:1 --cpus 2 --mem 2048 --allow-cidr 10.77.0.2/32 --dns 10.77.0.2 " +
				"-e HTTPS_PROXY=http://10.77.0.2:3128 -e HTTP_PROXY=http://10.77.0.2:3128 -e LIBRARY" +
				" -e NO_PROXY=localhost,127.0.0.1,::1 -e Z " + proxyLower,
			wantChild: []string{"LIBRARY=/opt/lib", "Z=last"},
		},
		{
			// spec.env values are public (reviewed in git); one that would
			// change smolvm itself goes on the command line, not in its
			// environment.
			name: "host-sensitive spec env on the command line",
			edit: func(w *bottle.Want) {
				w.Guest.Daemons = []string{}
				w.Guest.AllowCIDRs = nil
				withEnv(w, map[string]string{"LD_LIBRARY_PATH": "/opt/lib", "TZ": "UTC", "MODE": "fast"}, nil)
			},
			wantArgv: "machine create --name bottle-alice " + labelArgs("", "") +
				" --image ghcr.io/org/agent:1 --cpus 2 --mem 2048 --allow-cidr 10.77.0.2/32 --dns 10.77.0.2" +
				" -e LD_LIBRARY_PATH=/opt/lib -e MODE -e TZ=UTC",
			wantChild: []string{"MODE=fast"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWant()
			if tt.edit != nil {
				tt.edit(&w)
			}
			f := &fakeRunner{}
			d := newFakeDriver(t, f, Options{})
			r, err := d.Create(context.Background(), w)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"--version", "machine ls", "machine create", "machine start"}
			if got := f.subcommands(); !reflect.DeepEqual(got, want) {
				t.Fatalf("calls = %q, want %q", got, want)
			}
			c, _ := f.find("machine create")
			// Every image reaches smolvm as an archive in the cache.
			wantArgv := strings.Replace(tt.wantArgv, "--image ghcr.io/org/agent:1 ", "--image "+fakeArchive(d, "ghcr.io/org/agent:1")+" ", 1)
			if got := joined(c.args); got != wantArgv {
				t.Errorf("create argv:\n got %s\nwant %s", got, wantArgv)
			}
			if !reflect.DeepEqual(c.env, tt.wantChild) {
				t.Errorf("child env = %q, want %q", c.env, tt.wantChild)
			}
			if c.timeout != DefaultCreateTimeout {
				t.Errorf("create timeout = %v, want %v", c.timeout, DefaultCreateTimeout)
			}
			for _, a := range c.args {
				if strings.Contains(a, secretToken) || strings.Contains(a, secretHost) {
					t.Errorf("argv carries a secret: %q", a)
				}
			}
			s, _ := f.find("machine start")
			if joined(s.args) != "machine start --name bottle-alice" {
				t.Errorf("start argv = %q", s.args)
			}
			if r.Name != "bottle-alice" || r.State != bottle.StateRunning || r.Bottle != "alice" ||
				r.Hash != "3f2a" || r.Instance != "host-a" || !reflect.DeepEqual(r.Labels, w.Labels) {
				t.Errorf("Create returned %+v", r)
			}
		})
	}
}

func TestCreateDeterministic(t *testing.T) {
	var argvs []string
	cache := t.TempDir()
	for i := 0; i < 5; i++ {
		f := &fakeRunner{}
		d := newFakeDriver(t, f, Options{CacheDir: cache})
		w := testWant()
		withEnv(&w, map[string]string{"A": "1", "B": "2", "C": "3", "D": "4", "E": "5"}, map[string]string{"GH_TOKEN": "x"})
		if _, err := d.Create(context.Background(), w); err != nil {
			t.Fatal(err)
		}
		c, _ := f.find("machine create")
		argvs = append(argvs, joined(c.args)+"|"+strings.Join(c.env, ","))
	}
	for _, a := range argvs[1:] {
		if a != argvs[0] {
			t.Fatalf("argv differs between runs:\n%s\n%s", argvs[0], a)
		}
	}
}

func TestCreateRefusals(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*bottle.Want)
		ls      string
		class   func(error) bool
		wantMsg string
		noValue string // must not appear in the error
	}{
		{
			name: "ipv6 bundle: --dns is IPv4 only",
			edit: func(w *bottle.Want) {
				w.Subnet = netip.MustParsePrefix("fd00:77::/120")
				w.BundleAddr = netip.MustParseAddr("fd00:77::2")
				w.GuestAddr = netip.MustParseAddr("fd00:77::3")
			},
			class:   cerrdefs.IsInvalidArgument,
			wantMsg: "bundle address fd00:77::2 is IPv6, but smolvm's --dns takes an IPv4 address only",
		},
		{
			name:    "name taken by an unmanaged machine",
			ls:      `[{"name":"bottle-alice","state":"running","labels":{},"ephemeral":false,"image":"alpine"}]`,
			class:   cerrdefs.IsConflict,
			wantMsg: `a machine named "bottle-alice" that bottle-reconcile does not manage already exists`,
		},
		{
			name:    "name taken by an ephemeral machine with our labels",
			ls:      `[{"name":"bottle-alice","state":"running","labels":{"dev.bottle-reconcile.managed-by":"bottle-reconcile"},"ephemeral":true}]`,
			class:   cerrdefs.IsConflict,
			wantMsg: `"bottle-alice" that bottle-reconcile does not manage`,
		},
		{
			name:    "name taken by our own machine",
			ls:      `[{"name":"bottle-alice","state":"stopped","labels":{"dev.bottle-reconcile.managed-by":"bottle-reconcile","dev.bottle-reconcile.instance":"host-b"}}]`,
			class:   cerrdefs.IsConflict,
			wantMsg: `machine "bottle-alice" already exists (instance "host-b", state stopped)`,
		},
		{
			name:    "no managed-by label",
			edit:    func(w *bottle.Want) { delete(w.Labels, bottle.LabelManagedBy) },
			class:   cerrdefs.IsInvalidArgument,
			wantMsg: "managed-by",
		},
		{
			name:    "no bundle address",
			edit:    func(w *bottle.Want) { w.BundleAddr = netip.Addr{} },
			class:   cerrdefs.IsInvalidArgument,
			wantMsg: "no bundle address",
		},
		{
			name:    "PATH from the host",
			edit:    func(w *bottle.Want) { withEnv(w, nil, map[string]string{"PATH": "/opt/" + secretHost}) },
			class:   cerrdefs.IsInvalidArgument,
			wantMsg: `envFromHost "PATH" cannot be passed`,
			noValue: secretHost,
		},
		{
			name:    "bad env name",
			edit:    func(w *bottle.Want) { withEnv(w, map[string]string{"A=B": secretToken}, nil) },
			class:   cerrdefs.IsInvalidArgument,
			wantMsg: `env name "A=B" is not valid`,
			noValue: secretToken,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWant()
			if tt.edit != nil {
				tt.edit(&w)
			}
			f := &fakeRunner{answers: map[string]fakeAnswer{}}
			if tt.ls != "" {
				f.answers["machine ls"] = fakeAnswer{stdout: tt.ls}
			}
			d := newFakeDriver(t, f, Options{})
			_, err := d.Create(context.Background(), w)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if !tt.class(err) {
				t.Errorf("Create error %v: wrong class", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Create error %q does not contain %q", err, tt.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), `smolvm: create machine "bottle-alice": `) {
				t.Errorf("Create error %q lacks the operation prefix", err)
			}
			if tt.noValue != "" && strings.Contains(err.Error(), tt.noValue) {
				t.Errorf("Create error leaks a value: %v", err)
			}
			if _, ok := f.find("machine create"); ok {
				t.Error("machine create was called")
			}
		})
	}
}

func TestCreateStartFails(t *testing.T) {
	f := &fakeRunner{answers: map[string]fakeAnswer{
		"machine start": {exitCode: 1, stderr: "Error: kvm not available: KVM not available.\n"},
	}}
	d := newFakeDriver(t, f, Options{})
	_, err := d.Create(context.Background(), testWant())
	if err == nil {
		t.Fatal("Create succeeded although start failed")
	}
	for _, s := range []string{`smolvm: create machine "bottle-alice": created, but not started`, "kvm not available"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if _, ok := f.find("machine delete"); ok {
		t.Error("the created machine was deleted; it must stay for the next pass to start")
	}
}

func TestCreateFailureRedacted(t *testing.T) {
	f := &fakeRunner{answers: map[string]fakeAnswer{
		"machine create": {exitCode: 1, stderr: "Error: config operation failed: create machine: machine 'bottle-alice' already exists or is being created\n"},
	}}
	d := newFakeDriver(t, f, Options{})
	w := testWant()
	_, err := d.Create(context.Background(), w)
	if !cerrdefs.IsConflict(err) {
		t.Fatalf("Create error %v, want a conflict", err)
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), secretHost) {
		t.Errorf("error leaks a secret: %v", err)
	}
	if !strings.Contains(err.Error(), "-e API_TOKEN -e") || !strings.Contains(err.Error(), "-e HTTP_PROXY=<redacted>") {
		t.Errorf("error %q does not quote the redacted argv", err)
	}
}

func TestStartStopDelete(t *testing.T) {
	r := bottle.Resource{Name: "bottle-alice", Instance: "host-a", Labels: machineLabels(testWant())}
	notFound := fakeAnswer{exitCode: 1, stderr: "Error: vm not found: bottle-alice\n"}
	row := func(labels string) string {
		return `[{"name":"bottle-alice","state":"running","ephemeral":false,"labels":` + labels + `}]`
	}
	ours := row(`{"dev.bottle-reconcile.managed-by":"bottle-reconcile","dev.bottle-reconcile.instance":"host-a"}`)
	foreign := row(`{"owner":"someone"}`)
	otherInstance := row(`{"dev.bottle-reconcile.managed-by":"bottle-reconcile","dev.bottle-reconcile.instance":"host-b"}`)
	const ls = "machine ls --json"
	isConflictNaming := func(what string) func(error) bool {
		return func(err error) bool {
			return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), `"bottle-alice"`) && strings.Contains(err.Error(), what)
		}
	}
	start := func(d *Driver) error { return d.Start(context.Background(), r) }
	stop := func(d *Driver) error { return d.Stop(context.Background(), r) }
	del := func(d *Driver) error { return d.Delete(context.Background(), r) }
	tests := []struct {
		name      string
		op        func(*Driver) error
		list      string // machine ls --json answer; "" means ours
		sub       string
		answer    fakeAnswer
		wantCalls []string
		timeout   time.Duration    // of the last call
		wantErr   func(error) bool // nil: success
	}{
		{name: "start", op: start, sub: "machine start", wantCalls: []string{ls, "machine start --name bottle-alice"}, timeout: DefaultCreateTimeout},
		{name: "start already running", op: start, sub: "machine start", timeout: DefaultCreateTimeout,
			answer:    fakeAnswer{stdout: "Machine 'bottle-alice' already running (PID: 123)\n"},
			wantCalls: []string{ls, "machine start --name bottle-alice"}},
		{name: "start missing", op: start, list: "[]", sub: "machine start", answer: notFound, wantErr: cerrdefs.IsNotFound,
			wantCalls: []string{ls, "machine start --name bottle-alice"}, timeout: DefaultCreateTimeout},
		{name: "start foreign", op: start, list: foreign, wantErr: isConflictNaming("does not manage"), wantCalls: []string{ls}, timeout: DefaultTimeout},
		{name: "stop", op: stop, sub: "machine stop", timeout: DefaultTimeout,
			answer:    fakeAnswer{stdout: "Machine 'bottle-alice' is not running (state: stopped)\n"},
			wantCalls: []string{ls, "machine stop --name bottle-alice"}},
		{name: "stop missing", op: stop, list: "[]", sub: "machine stop", answer: notFound, wantErr: cerrdefs.IsNotFound,
			wantCalls: []string{ls, "machine stop --name bottle-alice"}, timeout: DefaultTimeout},
		{name: "stop foreign", op: stop, list: foreign, wantErr: isConflictNaming("does not manage"), wantCalls: []string{ls}, timeout: DefaultTimeout},
		{name: "stop another instance's", op: stop, list: otherInstance, wantErr: isConflictNaming(`instance "host-b"`), wantCalls: []string{ls}, timeout: DefaultTimeout},
		{name: "delete", op: del, sub: "machine delete", wantCalls: []string{ls, "machine delete --name bottle-alice -f"}, timeout: DefaultTimeout},
		{name: "delete of an unlisted machine is success", op: del, list: "[]", wantCalls: []string{ls}, timeout: DefaultTimeout},
		{name: "delete of a machine gone meanwhile is success", op: del, sub: "machine delete", answer: notFound,
			wantCalls: []string{ls, "machine delete --name bottle-alice -f"}, timeout: DefaultTimeout},
		{name: "delete foreign", op: del, list: foreign, wantErr: isConflictNaming("does not manage"), wantCalls: []string{ls}, timeout: DefaultTimeout},
		{name: "delete another instance's", op: del, list: otherInstance, wantErr: isConflictNaming(`instance "host-b"`), wantCalls: []string{ls}, timeout: DefaultTimeout},
		{name: "delete of an ephemeral machine", op: del, timeout: DefaultTimeout, wantCalls: []string{ls}, wantErr: isConflictNaming("does not manage"),
			list: `[{"name":"bottle-alice","state":"running","ephemeral":true,"labels":{"dev.bottle-reconcile.managed-by":"bottle-reconcile","dev.bottle-reconcile.instance":"host-a"}}]`},
		{name: "delete fails", op: del, sub: "machine delete", timeout: DefaultTimeout,
			answer: fakeAnswer{exitCode: 1, stderr: "Error: fork base has clones\n"},
			wantErr: func(err error) bool {
				return strings.HasPrefix(err.Error(), `smolvm: delete machine "bottle-alice": `) && strings.Contains(err.Error(), "fork base")
			},
			wantCalls: []string{ls, "machine delete --name bottle-alice -f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := tt.list
			if list == "" {
				list = ours
			}
			f := &fakeRunner{answers: map[string]fakeAnswer{"machine ls": {stdout: list}}}
			if tt.sub != "" {
				f.answers[tt.sub] = tt.answer
			}
			d := newFakeDriver(t, f, Options{})
			err := tt.op(d)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error %v, want success", err)
			case tt.wantErr != nil && (err == nil || !tt.wantErr(err)):
				t.Fatalf("error %v: not the expected one", err)
			}
			var got []string
			for _, c := range f.calls {
				got = append(got, joined(c.args))
			}
			if !reflect.DeepEqual(got, tt.wantCalls) {
				t.Fatalf("calls = %q, want %q", got, tt.wantCalls)
			}
			if last := f.calls[len(f.calls)-1]; last.timeout != tt.timeout {
				t.Errorf("timeout = %v, want %v", last.timeout, tt.timeout)
			}
		})
	}
}

func TestKindRole(t *testing.T) {
	d := newFakeDriver(t, &fakeRunner{}, Options{})
	if d.Kind() != "smolvm" || d.Role() != bottle.RoleGuest {
		t.Errorf("Kind, Role = %q, %q", d.Kind(), d.Role())
	}
}
