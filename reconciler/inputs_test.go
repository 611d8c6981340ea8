package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

const (
	hostSecret = "host-secret-4711"
	specValue  = "spec-value-0815"
)

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func guestWant(s spec.Spec) bottle.Want {
	w := bottle.Want{Bottle: "a", Role: bottle.RoleGuest, Name: "bottle-a", Labels: map[string]string{}}
	inputs(&w, s)
	w.Fill(netip.MustParsePrefix("10.213.0.8/29"))
	return w
}

func envList(env []bottle.EnvVar) string {
	var b strings.Builder
	for _, v := range env {
		fmt.Fprintf(&b, "%s=%s/%s ", v.Name, v.Value, v.Source)
	}
	return strings.TrimSpace(b.String())
}

// The guest's environment is assembled in one place, for every guest
// driver: spec.env, the host's envFromHost values and the bundle's proxy
// settings, sorted, each with its source.
func TestResolveEnv(t *testing.T) {
	const proxy = "http://10.213.0.10:3128"
	const noProxy = "localhost,127.0.0.1,::1"
	tests := []struct {
		name string
		s    spec.Spec
		host map[string]string
		want string // NAME=VALUE/SOURCE ..., sorted
		err  func(error) bool
		msg  string
	}{
		{name: "nothing", s: spec.Spec{}},
		{name: "spec env only", s: spec.Spec{Env: map[string]string{"B": "2", "A": ""}}, want: "A=/env B=2/env"},
		{name: "host value read", s: spec.Spec{EnvFromHost: []string{"TOKEN"}}, host: map[string]string{"TOKEN": hostSecret},
			want: "TOKEN=" + hostSecret + "/envFromHost"},
		{name: "host value empty is set", s: spec.Spec{EnvFromHost: []string{"TOKEN"}}, host: map[string]string{"TOKEN": ""},
			want: "TOKEN=/envFromHost"},
		{name: "proxy with egress", s: spec.Spec{Daemons: []string{spec.DaemonEgress}, Env: map[string]string{"Z": "1"}},
			want: "HTTPS_PROXY=" + proxy + "/bundle HTTP_PROXY=" + proxy + "/bundle NO_PROXY=" + noProxy + "/bundle Z=1/env " +
				"http_proxy=" + proxy + "/bundle https_proxy=" + proxy + "/bundle no_proxy=" + noProxy + "/bundle"},
		{name: "no proxy without egress", s: spec.Spec{Daemons: []string{spec.DaemonDNS}}},
		{name: "host variable missing", s: spec.Spec{Env: map[string]string{"A": specValue}, EnvFromHost: []string{"TOKEN"}},
			err: cerrdefs.IsFailedPrecondition, msg: `host environment variable "TOKEN" named in spec.envFromHost is not set`},
		{name: "both env and envFromHost", s: spec.Spec{Env: map[string]string{"TOKEN": "x"}, EnvFromHost: []string{"TOKEN"}},
			host: map[string]string{"TOKEN": hostSecret}, err: cerrdefs.IsInvalidArgument, msg: `env "TOKEN" is set by both`},
		{name: "reserved in spec", s: spec.Spec{Env: map[string]string{"https_proxy": "http://elsewhere"}},
			err: cerrdefs.IsInvalidArgument, msg: `"https_proxy" is reserved`},
		{name: "reserved from host", s: spec.Spec{EnvFromHost: []string{"ALL_PROXY"}}, host: map[string]string{"ALL_PROXY": "x"},
			err: cerrdefs.IsInvalidArgument, msg: `"ALL_PROXY" is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := guestWant(tt.s)
			planned := slices.Clone(w.Guest.Env)
			got, err := resolveEnv(w, lookup(tt.host))
			if tt.err != nil {
				if err == nil || !tt.err(err) || !strings.Contains(err.Error(), tt.msg) || !Terminal(err) {
					t.Fatalf("err = %v; want a terminal error containing %q", err, tt.msg)
				}
				if strings.Contains(err.Error(), hostSecret) || strings.Contains(err.Error(), specValue) {
					t.Errorf("the error shows a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := envList(got.Guest.Env); s != tt.want {
				t.Errorf("env = %s\nwant  %s", s, tt.want)
			}
			if !slices.Equal(w.Guest.Env, planned) {
				t.Errorf("resolveEnv changed the plan's Want: %v", w.Guest.Env)
			}
			if HashWant(got, "") != HashWant(w, "") {
				t.Errorf("resolving changed the hash")
			}
		})
	}
}

// A plan reads no host value, and nothing of a Want, resolved or not, shows
// a value when marshalled, printed or logged.
func TestValuesNeverLeaveWant(t *testing.T) {
	g := newRig(t, "i1")
	called := false
	getenv := func(k string) (string, bool) { called = true; return lookup(map[string]string{"TOKEN": hostSecret})(k) }
	g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4, Getenv: getenv},
		g.net, g.bun, map[string]Driver{"smolvm": g.vm}, testr.New(t))
	g.write("a.yaml", specFor("a", "env: {PLAIN: "+specValue+"}", "envFromHost: [TOKEN]", "daemons: [dns]"))
	p, err := g.r.Plan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("the plan read the host's environment")
	}
	var guest *bottle.Want
	for _, op := range p.Plan.Ops {
		if op.Role == bottle.RoleGuest {
			guest = op.Want
		}
	}
	if guest == nil {
		t.Fatalf("no guest create in\n%s", p.Plan)
	}
	resolved, err := resolveEnv(*guest, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if envList(resolved.Guest.Env) != "PLAIN="+specValue+"/env TOKEN="+hostSecret+"/envFromHost" {
		t.Fatalf("resolved env = %s", envList(resolved.Guest.Env))
	}

	var out bytes.Buffer
	planJSON, err := json.Marshal(p.Plan)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(resolved)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(planJSON)
	out.Write(wantJSON)
	out.WriteString(p.Plan.String())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		fmt.Fprintf(&out, verb, resolved)
		fmt.Fprintf(&out, verb, resolved.Guest.Env)
	}
	for _, h := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		logr.FromSlogHandler(h).Info("create", "want", resolved, "env", resolved.Guest.Env)
	}
	funcr.NewJSON(func(s string) { out.WriteString(s) }, funcr.Options{}).Info("create", "want", resolved, "env", resolved.Guest.Env)
	funcr.New(func(p, s string) { out.WriteString(s) }, funcr.Options{}).Info("create", "want", resolved)

	for _, v := range []string{hostSecret, specValue} {
		if strings.Contains(out.String(), v) {
			t.Errorf("a value shows:\n%s", out.String())
		}
	}
	for _, name := range []string{"TOKEN", "PLAIN"} {
		if !strings.Contains(string(wantJSON), name) {
			t.Errorf("the marshalled Want does not name %s: %s", name, wantJSON)
		}
	}
}

// A guest driver receives the resolved environment; an envFromHost variable
// missing from the reconciler's environment fails the create before the
// driver is called, Blocked, naming the variable.
func TestGuestDriverReceivesResolvedEnv(t *testing.T) {
	for _, tt := range []struct {
		name string
		host map[string]string
	}{{"set", map[string]string{"TOKEN": hostSecret}}, {"missing", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t, "i1")
			g.r = New(Config{Dir: g.dir, Instance: "i1", StateDir: g.state, MaxDeletes: 5, Concurrency: 4, Getenv: lookup(tt.host)},
				g.net, g.bun, map[string]Driver{"smolvm": g.vm}, testr.New(t))
			g.write("a.yaml", specFor("a", "env: {PLAIN: "+specValue+"}", "envFromHost: [TOKEN]", "daemons: [dns]"))
			g.pass()
			got, created := g.vm.wants["bottle-a"]
			sts, err := g.r.Status().All()
			mustDo(t, err)
			if tt.host == nil {
				if created || slices.Contains(g.vm.writes(), "create bottle-a") {
					t.Fatalf("the guest driver was called: %v", got)
				}
				if st := sts[0]; st.State != StatusBlocked || !strings.Contains(st.LastError, `"TOKEN"`) {
					t.Fatalf("status = %+v; want Blocked naming TOKEN", st)
				}
				return
			}
			if !created {
				t.Fatalf("no guest created; status %+v", sts)
			}
			if s := envList(got.Guest.Env); s != "PLAIN="+specValue+"/env TOKEN="+hostSecret+"/envFromHost" {
				t.Errorf("the driver received env %s", s)
			}
		})
	}
}
