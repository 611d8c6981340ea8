package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func ms2(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSummarize(t *testing.T) {
	tests := []struct {
		in            []time.Duration
		med, min, max time.Duration
	}{
		{nil, 0, 0, 0},
		{[]time.Duration{ms2(5)}, ms2(5), ms2(5), ms2(5)},
		{[]time.Duration{ms2(30), ms2(10), ms2(20)}, ms2(20), ms2(10), ms2(30)},
		{[]time.Duration{ms2(40), ms2(10), ms2(20), ms2(30)}, ms2(25), ms2(10), ms2(40)},
	}
	for _, tt := range tests {
		s := summarize(tt.in)
		if s.Median != tt.med || s.Min != tt.min || s.Max != tt.max {
			t.Errorf("summarize(%v) = %v/%v/%v, want %v/%v/%v", tt.in, s.Median, s.Min, s.Max, tt.med, tt.min, tt.max)
		}
	}
	in := []time.Duration{ms2(3), ms2(1), ms2(2)}
	summarize(in)
	if in[0] != ms2(3) {
		t.Errorf("summarize sorted its input: %v", in)
	}
}

func TestRatioAndDurations(t *testing.T) {
	for _, tt := range []struct {
		a, f time.Duration
		want string
	}{
		{ms2(1180), ms2(1000), "1.18x"},
		{ms2(500), ms2(1000), "0.50x"},
		{ms2(5), 0, "-"},
		{0, ms2(5), "-"},
	} {
		if got := ratio(tt.a, tt.f); got != tt.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tt.a, tt.f, got, tt.want)
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0ms"},
		{2500 * time.Microsecond, "2.5ms"},
		{ms2(123), "123ms"},
		{ms2(2346), "2.35s"},
	} {
		if got := fmtDur(tt.d); got != tt.want {
			t.Errorf("fmtDur(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := cell(summarize([]time.Duration{ms2(20), ms2(10), ms2(30)})); got != "20ms (10ms–30ms)" {
		t.Errorf("cell = %q", got)
	}
	if got := cell(summarize([]time.Duration{ms2(20)})); got != "20ms" {
		t.Errorf("cell of one sample = %q", got)
	}
}

func testReport() *report {
	return &report{
		N: 2, Runs: 3,
		Machine: machine{Cores: 2, MemoryMiB: 2048, Kernel: "Linux 6.1", Docker: "20.10.24", DockerAPI: "1.41"},
		Contenders: []*contenderResult{
			{Name: "floor", Up: []time.Duration{ms2(1000), ms2(900), ms2(1100)}, Observe: []time.Duration{ms2(2)}, Down: []time.Duration{ms2(500)}},
			{Name: "compose", Skipped: "docker-compose is not installed"},
			{Name: "bottle-reconcile", Up: []time.Duration{ms2(1180), ms2(1200), ms2(1100)}, Observe: []time.Duration{ms2(40)}, Down: []time.Duration{ms2(600)}},
		},
		FloorOps: []opStat{{Op: "network create", Count: 6, Mean: ms2(45)},
			{Op: "bundle create", Count: 6, Mean: ms2(30)}, {Op: "egress connect", Count: 6, Mean: ms2(10)}, {Op: "bundle start", Count: 6, Mean: ms2(860)}},
		ReconcileOps: []opStat{{Op: "network create", Count: 6, Mean: ms2(50)}, {Op: "bundle create", Count: 6, Mean: ms2(1000)}, {Op: "guest create", Count: 6, Mean: ms2(700)}},
		NoopCalls:    map[string]int{"GET /containers/json": 2, "GET /networks": 1, "GET /containers/abc/json": 1, "GET /containers/def/json": 1},
		Idle: &idleResult{Baseline: idleWindow{Window: 10 * time.Second, BusyPct: 1, OneCorePct: 2, Docker: 500 * time.Millisecond},
			Bottles: idleWindow{Window: 10 * time.Second, BusyPct: 5, OneCorePct: 10, Docker: 2 * time.Second, Bundles: 100 * time.Millisecond}},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	testReport().writeText(&b)
	out := b.String()
	for _, want := range []string{
		"CONTENDER", "x FLOOR",
		"1.00s (900ms–1.10s)", "1.18x", "20.00x", "1.20x",
		"compose           skipped: docker-compose is not installed",
		"network create  6      45ms",
		"per resource, mean over every run",
		"no-op pass over 2 bottles: 5 (3 distinct endpoints)",
		"GET /containers/{id}/json  2",
		"difference", "+4.00%", "+8.0%",
		"of which Docker's processes (dockerd, containerd, shims) +15.00% of one core, bottle-reconcile's bundles 1.00%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	// The side-by-side rows: the floor's calls summed per resource; a side
	// that lacks a call shows "-".
	for _, want := range []string{
		"network create 45ms 50ms 1.11x network create",
		"bundle create 900ms 1.00s 1.11x bundle create + egress connect + bundle start + ready line",
		"guest create - 700ms - guest create + guest start + host firewall rules, routes",
	} {
		found := false
		for _, l := range lines {
			found = found || strings.Join(strings.Fields(l), " ") == want
		}
		if !found {
			t.Errorf("text report lacks the row %q:\n%s", want, out)
		}
	}
	// Aligned: the data columns of the floor and bottle-reconcile rows
	// start where the header's do.
	var header, row string
	for _, l := range lines {
		if strings.HasPrefix(l, "CONTENDER") {
			header = l
		}
		if strings.HasPrefix(l, "bottle-reconcile ") {
			row = l
		}
	}
	if i, j := strings.Index(header, "UP 2"), strings.Index(row, "1.18s"); i < 0 || i != j {
		t.Errorf("UP column not aligned (%d vs %d):\n%s\n%s", i, j, header, row)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var j jsonReport
	if err := json.Unmarshal(b.Bytes(), &j); err != nil {
		t.Fatalf("decode: %v\n%s", err, b.String())
	}
	if len(j.Contenders) != 3 || j.Contenders[1].Skipped == "" || j.Contenders[1].Up != nil {
		t.Fatalf("contenders = %+v", j.Contenders)
	}
	r := j.Contenders[2]
	if r.Up.MedianMs != 1180 || r.Up.Ratio < 1.179 || r.Up.Ratio > 1.181 || len(r.Up.Samples) != 3 {
		t.Errorf("bottle-reconcile up = %+v", r.Up)
	}
	if len(j.ReconcileOps) != 3 || j.ReconcileOps[1] != (jsonOp{Op: "bundle create", Calls: 6, MeanMs: 1000}) {
		t.Errorf("reconcile ops = %+v", j.ReconcileOps)
	}
	if w := j.Idle.Bottles; w.DockerPct == nil || *w.DockerPct != 20 || w.BundlesPct == nil || *w.BundlesPct != 1 {
		t.Errorf("idle with bottles = %+v", w)
	}
	if j.APICalls == nil || j.APICalls.NoopPass.Total != 5 {
		t.Errorf("api calls = %+v", j.APICalls)
	}
}

func TestLayout(t *testing.T) {
	bs := layout("bench0a1b2c-f", 1, 2)
	want := []struct{ name, subnet, net, bundle, guest, gw, baddr, gaddr string }{
		{"bench0a1b2c-f-0", "10.214.64.0/29", "bottle-bench0a1b2c-f-0", "bottle-bench0a1b2c-f-0-bundle", "bottle-bench0a1b2c-f-0-guest", "10.214.64.1", "10.214.64.2", "10.214.64.3"},
		{"bench0a1b2c-f-1", "10.214.64.8/29", "bottle-bench0a1b2c-f-1", "bottle-bench0a1b2c-f-1-bundle", "bottle-bench0a1b2c-f-1-guest", "10.214.64.9", "10.214.64.10", "10.214.64.11"},
	}
	for i, w := range want {
		b := bs[i]
		got := []string{b.Name, b.Subnet.String(), b.Network(), b.BundleName(), b.GuestName(), b.Gateway().String(), b.BundleAddr().String(), b.GuestAddr().String()}
		exp := []string{w.name, w.subnet, w.net, w.bundle, w.guest, w.gw, w.baddr, w.gaddr}
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("bottle %d = %v, want %v", i, got, exp)
		}
	}
	// Names are padded to sort, and the last of the largest run stays in
	// its slot.
	if n := layout("x", 0, 12)[3].Name; n != "x-03" {
		t.Errorf("name = %q, want x-03", n)
	}
	last := layout("x", 2, maxBottles)[maxBottles-1].Subnet
	if last.String() != "10.214.191.248/29" {
		t.Errorf("last subnet of slot 2 = %s", last)
	}
}

func TestCLIScripts(t *testing.T) {
	bs := layout("bench0a1b2c-c", 1, 2)
	up, err := cliUpScript(bs, "bench0a1b2c-c-egress", "bottle-reconcile-bundle:abc", "0a1b2c")
	if err != nil {
		t.Fatal(err)
	}
	down := cliDownScript(bs, "bench0a1b2c-c-egress")
	calls := runWithFakeDocker(t, up)
	// One egress network, then six commands per bottle, in order.
	var verbs []string
	for _, c := range calls {
		verbs = append(verbs, strings.Join(c[:2], " "))
	}
	want := []string{"network create"}
	for _, b := range bs {
		want = append(want, "network create", "create --name", "network connect", "start "+b.BundleName(), "create --name", "start "+b.GuestName())
	}
	if !reflect.DeepEqual(verbs, want) {
		t.Fatalf("up ran\n%q\nwant\n%q\n%s", verbs, want, up)
	}
	flat := func(c []string) string { return strings.Join(c, " ") }
	for _, frag := range []string{
		"--internal --subnet 10.214.64.0/29 --gateway 10.214.64.1 --opt com.docker.network.bridge.inhibit_ipv4=true",
		"--label dev.bottle-bench.run=0a1b2c",
	} {
		if !strings.Contains(flat(calls[1]), frag) {
			t.Errorf("network create %v lacks %q", calls[1], frag)
		}
	}
	if !strings.Contains(flat(calls[0]), "com.docker.network.bridge.enable_icc=false bench0a1b2c-c-egress") {
		t.Errorf("egress network create = %v", calls[0])
	}
	bundleCmd := flat(calls[2])
	for _, frag := range []string{
		"--name bottle-bench0a1b2c-c-0-bundle --network bottle-bench0a1b2c-c-0 --ip 10.214.64.2",
		"--user 65534:65534 --cap-drop ALL --security-opt no-new-privileges --read-only",
		"--sysctl net.ipv4.ip_unprivileged_port_start=0",
		"--pids-limit 128 --memory 128m --memory-swap 128m --restart no",
		"--entrypoint /bottle-reconcile",
		"bottle-reconcile-bundle:abc bundle run",
	} {
		if !strings.Contains(bundleCmd, frag) {
			t.Errorf("bundle create lacks %q:\n%s", frag, bundleCmd)
		}
	}
	checkConfigArg(t, calls[2], bs[0])
	if got := flat(calls[3]); got != "network connect bench0a1b2c-c-egress bottle-bench0a1b2c-c-0-bundle" {
		t.Errorf("connect = %q", got)
	}
	guestCmd := flat(calls[5])
	for _, frag := range []string{
		"--name bottle-bench0a1b2c-c-0-guest --network bottle-bench0a1b2c-c-0 --ip 10.214.64.3",
		"--cap-drop ALL --security-opt no-new-privileges --dns 10.214.64.2 --ipc private --restart no",
		"--pids-limit 1024 --memory 256m --memory-swap 256m --cpus 1",
		"--env GIT_AUTHOR_NAME=agent", "--env HTTPS_PROXY=http://10.214.64.2:3128",
	} {
		if !strings.Contains(guestCmd, frag) {
			t.Errorf("guest create lacks %q:\n%s", frag, guestCmd)
		}
	}
	if !strings.HasSuffix(guestCmd, " bottle-demo-agent:dev") {
		t.Errorf("guest create does not end with the image: %s", guestCmd)
	}

	downCalls := runWithFakeDocker(t, down)
	var got []string
	for _, c := range downCalls {
		got = append(got, flat(c))
	}
	wantDown := []string{
		"rm -f bottle-bench0a1b2c-c-0-guest bottle-bench0a1b2c-c-0-bundle", "network rm bottle-bench0a1b2c-c-0",
		"rm -f bottle-bench0a1b2c-c-1-guest bottle-bench0a1b2c-c-1-bundle", "network rm bottle-bench0a1b2c-c-1",
		"network rm bench0a1b2c-c-egress",
	}
	if !reflect.DeepEqual(got, wantDown) {
		t.Errorf("down ran\n%q\nwant\n%q", got, wantDown)
	}
}

// checkConfigArg finds BOTTLE_BUNDLE_CONFIG in a command's words and
// compares it, decoded, with what the bundle driver would write.
func checkConfigArg(t *testing.T, words []string, b benchBottle) {
	t.Helper()
	for _, w := range words {
		if v, ok := strings.CutPrefix(w, bundle.ConfigEnv+"="); ok {
			checkConfig(t, v, b)
			return
		}
	}
	t.Errorf("no %s in %q", bundle.ConfigEnv, words)
}

func checkConfig(t *testing.T, v string, b benchBottle) {
	t.Helper()
	got, err := bundle.DecodeConfig(v)
	if err != nil {
		t.Fatal(err)
	}
	want := bundle.Config{Bottle: b.Name, Daemons: []string{"egress", "dns"}, Allow: []string{"api.anthropic.com"},
		Listen: b.BundleAddr()}
	want.Refuse = append(want.Refuse, benchPool)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bundle config = %+v, want %+v", got, want)
	}
}

// runWithFakeDocker runs script with a docker on PATH that records its
// arguments, and returns one word list per call.
func runWithFakeDocker(t *testing.T, script string) [][]string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	fake := "#!/usr/bin/env bash\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >>" + shellQuote(log) + "\nprintf '\\n' >>" + shellQuote(log) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(sp, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", sp)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script failed: %v\n%s\n%s", err, out, script)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		calls = append(calls, strings.Split(strings.TrimSuffix(l, "\x00"), "\x00"))
	}
	return calls
}

func TestComposeFile(t *testing.T) {
	bs := layout("bench0a1b2c-k", 2, 2)
	body, err := composeFile(bs, "bench0a1b2c-k-egress", "bottle-reconcile-bundle:abc", "0a1b2c")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version  string
		Networks map[string]struct {
			Name       string
			Driver     string
			Internal   bool
			EnableIPv6 bool              `yaml:"enable_ipv6"`
			DriverOpts map[string]string `yaml:"driver_opts"`
			IPAM       struct{ Config []map[string]string }
			Labels     map[string]string
		}
		Services map[string]struct {
			ContainerName string `yaml:"container_name"`
			Image         string
			Entrypoint    []string
			Command       []string
			User          string
			Environment   map[string]string
			CapDrop       []string `yaml:"cap_drop"`
			SecurityOpt   []string `yaml:"security_opt"`
			ReadOnly      bool     `yaml:"read_only"`
			Sysctls       map[string]string
			PidsLimit     int   `yaml:"pids_limit"`
			MemLimit      int64 `yaml:"mem_limit"`
			MemswapLimit  int64 `yaml:"memswap_limit"`
			CPUs          float64
			DNS           []string
			IPC           string
			Restart       string
			Networks      map[string]struct {
				IPv4Address string `yaml:"ipv4_address"`
			}
		}
	}
	if err := yamlv3.Unmarshal([]byte(body), &f); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, body)
	}
	if f.Version != "2.4" || len(f.Networks) != 3 || len(f.Services) != 4 {
		t.Fatalf("version %q, %d networks, %d services:\n%s", f.Version, len(f.Networks), len(f.Services), body)
	}
	eg := f.Networks["egress"]
	if eg.Name != "bench0a1b2c-k-egress" || eg.Internal || eg.DriverOpts["com.docker.network.bridge.enable_icc"] != "false" {
		t.Errorf("egress network = %+v", eg)
	}
	for _, b := range bs {
		n := f.Networks[b.Name]
		if n.Name != b.Network() || !n.Internal || n.EnableIPv6 || n.Driver != "bridge" ||
			n.DriverOpts["com.docker.network.bridge.inhibit_ipv4"] != "true" ||
			len(n.IPAM.Config) != 1 || n.IPAM.Config[0]["subnet"] != b.Subnet.String() || n.IPAM.Config[0]["gateway"] != b.Gateway().String() ||
			n.Labels[labelRun] != "0a1b2c" {
			t.Errorf("network %s = %+v", b.Name, n)
		}
		bu := f.Services[b.Service("bundle")]
		if bu.ContainerName != b.BundleName() || bu.Image != "bottle-reconcile-bundle:abc" || bu.User != "65534:65534" ||
			!reflect.DeepEqual(bu.Entrypoint, []string{"/bottle-reconcile"}) || !reflect.DeepEqual(bu.Command, []string{"bundle", "run"}) ||
			!reflect.DeepEqual(bu.CapDrop, []string{"ALL"}) || !reflect.DeepEqual(bu.SecurityOpt, []string{"no-new-privileges"}) ||
			!bu.ReadOnly || bu.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "0" || bu.PidsLimit != 128 ||
			bu.MemLimit != 128<<20 || bu.MemswapLimit != 128<<20 || bu.Restart != "no" ||
			bu.Networks[b.Name].IPv4Address != b.BundleAddr().String() || len(bu.Networks) != 2 {
			t.Errorf("bundle service of %s = %+v", b.Name, bu)
		}
		if _, ok := bu.Networks["egress"]; !ok {
			t.Errorf("bundle of %s is not on the egress network", b.Name)
		}
		checkConfig(t, bu.Environment[bundle.ConfigEnv], b)
		g := f.Services[b.Service("guest")]
		if g.ContainerName != b.GuestName() || g.Image != agentImage || g.ReadOnly ||
			!reflect.DeepEqual(g.CapDrop, []string{"ALL"}) || !reflect.DeepEqual(g.DNS, []string{b.BundleAddr().String()}) ||
			g.IPC != "private" || g.PidsLimit != 1024 || g.MemLimit != 256<<20 || g.CPUs != 1 || g.Restart != "no" ||
			len(g.Networks) != 1 || g.Networks[b.Name].IPv4Address != b.GuestAddr().String() ||
			g.Environment["GIT_AUTHOR_NAME"] != "agent" || g.Environment["HTTP_PROXY"] != "http://"+b.BundleAddr().String()+":3128" {
			t.Errorf("guest service of %s = %+v", b.Name, g)
		}
	}
	if yq("a'b$c") != `'a''b$$c'` {
		t.Errorf("yq = %s", yq("a'b$c"))
	}
}

func TestSpecFileValid(t *testing.T) {
	b, name, _, problems := spec.Parse("bench0a1b2c-r-0.yaml", []byte(specFile("bench0a1b2c-r-0", "it's $x")), spec.Options{})
	if len(problems) > 0 {
		t.Fatalf("generated spec has problems: %v", problems)
	}
	if name != "bench0a1b2c-r-0" || b.Spec.Guest != spec.GuestDocker || b.Spec.Image != agentImage ||
		b.Spec.Env[guestEnvKey] != "it's $x" || b.Spec.Resources.CPUs != 1 || b.Spec.Resources.MemoryMiB != 256 {
		t.Errorf("spec %s = %+v", name, b.Spec)
	}
}

func TestCountingProxy(t *testing.T) {
	dir := t.TempDir()
	upstream := filepath.Join(dir, "upstream.sock")
	ln, err := net.Listen("unix", upstream)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), body)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	p, err := startCountingProxy(filepath.Join(dir, "proxy.sock"), upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", p.sock)
	}}}
	do := func(method, path, body string) string {
		req, err := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := do("POST", "/v1.41/networks/create", `{"Name":"x"}`); got != `POST /v1.41/networks/create {"Name":"x"}` {
		t.Errorf("proxied answer = %q", got)
	}
	do("HEAD", "/_ping", "")
	do("GET", "/v1.41/containers/json?all=1", "")
	do("GET", "/v1.41/containers/json", "")
	do("GET", "/v1.41/containers/3f2a/json", "")
	want := map[string]int{
		"POST /networks/create": 1, "HEAD /_ping": 1, "GET /containers/json": 2, "GET /containers/3f2a/json": 1,
	}
	if got := p.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	eps, total := byEndpoint(p.snapshot())
	if total != 5 || eps[0] != (apiCount{"GET /containers/json", 2}) {
		t.Errorf("byEndpoint = %v, %d", eps, total)
	}
	p.reset()
	if got := p.snapshot(); len(got) != 0 {
		t.Errorf("after reset: %v", got)
	}
	if env := p.env(); len(env) != 1 || env[0] != "DOCKER_HOST=unix://"+p.sock {
		t.Errorf("env = %v", env)
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"GET /containers/json":                   "GET /containers/json",
		"GET /containers/abc123/json":            "GET /containers/{id}/json",
		"POST /containers/abc/start":             "POST /containers/{id}/start",
		"DELETE /containers/abc":                 "DELETE /containers/{id}",
		"GET /networks":                          "GET /networks",
		"GET /networks/bottle-x":                 "GET /networks/{id}",
		"POST /networks/create":                  "POST /networks/create",
		"GET /images/bottle-demo-agent:dev/json": "GET /images/{name}/json",
		"GET /images/library/x:1/json":           "GET /images/{name}/json",
		"HEAD /_ping":                            "HEAD /_ping",
	} {
		if got := endpoint(in); got != want {
			t.Errorf("endpoint(%q) = %q, want %q", in, got, want)
		}
	}
	if got := stripVersion("/v1.41/containers/json"); got != "/containers/json" {
		t.Errorf("stripVersion = %q", got)
	}
	if got := stripVersion("/_ping"); got != "/_ping" {
		t.Errorf("stripVersion = %q", got)
	}
}

func TestProcParsers(t *testing.T) {
	a, err := parseProcStat("cpu  100 0 50 800 50 0 0 0 10 0\ncpu0 1 2 3 4\n")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parseProcStat("cpu  200 0 100 1600 100 0 0 0 20 0\n")
	if a != (cpuTimes{Busy: 150, Total: 1000}) {
		t.Errorf("parseProcStat = %+v", a)
	}
	w := busyBetween(a, b, 10*time.Second, 2)
	if w.BusyPct != 15 || w.OneCorePct != 30 {
		t.Errorf("busyBetween = %+v, want 15%% and 30%%", w)
	}
	if _, err := parseProcStat("intr 1 2 3"); err == nil {
		t.Error("parseProcStat accepted a line that is not cpu")
	}

	d, err := parsePidStat("1234 (bottle (re)concile) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 10 0 100 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if d != 3100*time.Millisecond {
		t.Errorf("parsePidStat = %v, want 3.1s", d)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain-word_1.2:3": "plain-word_1.2:3",
		`{"a":1}`:          `'{"a":1}'`,
		"it's":             `'it'\''s'`,
		"a b":              "'a b'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-n", "2", "-contenders", "reconcile,floor", "-id", "0a1b2c"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 2 || o.runs != 3 || !reflect.DeepEqual(o.contenders, []string{"bottle-reconcile", "floor"}) || o.id != "0a1b2c" {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{
		{"-n", "0"}, {"-contenders", "floor,docker"}, {"-contenders", "cli,cli"}, {"-o", "yaml"},
		{"-id", "XYZ"}, {"-cleanup"}, {"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestPlotData(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r jsonReport) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := write("100.json", jsonReport{N: 100, FloorObserveProcess: &jsonStat{MedianMs: 30}, Contenders: []jsonContender{
		{Name: "floor", Noop: &jsonStat{MedianMs: 20}},
		{Name: "bottle-reconcile", Noop: &jsonStat{MedianMs: 35.5}},
	}, Idle: &jsonIdle{Baseline: jsonWindow{OneCorePct: 1, DockerPct: ptr(0.25), BundlesPct: ptr(0.0)},
		Bottles: jsonWindow{OneCorePct: 1.5, DockerPct: ptr(0.5), BundlesPct: ptr(0.125)}}})
	small := write("10.json", jsonReport{N: 10, Contenders: []jsonContender{
		{Name: "bottle-reconcile", Noop: &jsonStat{MedianMs: 60}},
	}})
	rows, err := plotRows([]string{big, small})
	if err != nil {
		t.Fatal(err)
	}
	want := "# N noop_ms floor_ms idle_pct_of_one_core docker_pct bundles_pct floor_process_ms\n10 60.000 NaN NaN NaN NaN NaN\n100 35.500 20.000 0.500 0.250 0.125 30.000\n"
	if got := plotData(rows); got != want {
		t.Errorf("plot data\n%s\nwant\n%s", got, want)
	}
	if _, err := plotRows(nil); err == nil {
		t.Error("plotRows of nothing: no error")
	}
}

func TestByName(t *testing.T) {
	a := map[int]nameCPU{1: {"dockerd", time.Second}, 2: {"containerd-shim", 0}, 3: {"containerd-shim", 0}, 4: {"gone", 0}, 5: {"old", 0}}
	b := map[int]nameCPU{1: {"dockerd", 1200 * time.Millisecond}, 2: {"containerd-shim", 300 * time.Millisecond},
		3: {"containerd-shim", 100 * time.Millisecond}, 5: {"reused", time.Hour}, 6: {"new", time.Hour}}
	got := byName(a, b, 2)
	want := []nameCPU{{"containerd-shim", 400 * time.Millisecond}, {"dockerd", 200 * time.Millisecond}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("byName = %v, want %v", got, want)
	}
}

func TestAddLoggedOps(t *testing.T) {
	log := strings.Join([]string{
		`{"time":"x","level":"INFO","msg":"operation done","bottle":"a","role":"network","action":"create","cause":"network missing","took":59000000}`,
		`{"time":"x","level":"INFO","msg":"operation done","bottle":"b","role":"network","action":"create","took":61000000}`,
		`{"time":"x","level":"INFO","msg":"operation done","bottle":"a","role":"bundle","action":"create","took":1000000000}`,
		`{"time":"x","level":"ERROR","msg":"operation failed","bottle":"c","role":"guest","action":"create","took":5000000}`,
		`{"time":"x","level":"INFO","msg":"pass done","took":9000000000}`,
		`not json at all`,
		``,
	}, "\n")
	ops := newOpTimer()
	addLoggedOps(ops, []byte(log))
	want := []opStat{{Op: "network create", Count: 2, Mean: ms2(60)}, {Op: "bundle create", Count: 1, Mean: ms2(1000)}}
	if got := ops.stats(); !reflect.DeepEqual(got, want) {
		t.Errorf("ops = %+v, want %+v", got, want)
	}
}

func TestCompareOps(t *testing.T) {
	floor := []opStat{{Op: "network create", Count: 2, Mean: ms2(100)}, {Op: "bundle create", Count: 2, Mean: ms2(30)},
		{Op: "bundle start", Count: 2, Mean: ms2(900)}, {Op: "guest remove", Count: 2, Mean: ms2(400)}}
	ours := []opStat{{Op: "network create", Count: 2, Mean: ms2(120)}, {Op: "network delete", Count: 2, Mean: ms2(200)}}
	got := compareOps(floor, ours)
	type row struct {
		op          string
		floor, ours time.Duration
	}
	var rows []row
	for _, c := range got {
		rows = append(rows, row{c.Op, c.FloorMean, c.OursMean})
	}
	// The bundle row lacks the floor's egress connect, so its floor side
	// is not summed from part of the calls: no row, as ours has none.
	want := []row{{"network create", ms2(100), ms2(120)}, {"guest delete", ms2(400), 0}, {"network delete", 0, ms2(200)}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %+v, want %+v", rows, want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestGroups(t *testing.T) {
	rows := []nameCPU{{"containerd-shim", 300 * time.Millisecond}, {"kdamond.0", time.Second}, {"dockerd", 100 * time.Millisecond},
		{"bottle-reconcil", 20 * time.Millisecond}, {"containerd", 5 * time.Millisecond}, {"bottle-bench", 50 * time.Millisecond}}
	docker, bundles := groups(rows)
	if docker != 405*time.Millisecond || bundles != 20*time.Millisecond {
		t.Errorf("groups = %v, %v; want 405ms, 20ms", docker, bundles)
	}
}
