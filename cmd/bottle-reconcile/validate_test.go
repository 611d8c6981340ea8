package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/schema"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

const goodSpec = `apiVersion: bottle-reconcile/v1alpha1
kind: Bottle
metadata:
  name: alice
spec:
  image: ghcr.io/acme/agent:1.4
`

const badSpec = `apiVersion: bottle-reconcile/v1alpha1
kind: Bottle
metadata:
  name: bob
spec:
  image: ghcr.io/acme/agent:1.4
  allowCIDRs: [127.0.0.0/8]
`

func specDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestValidate(t *testing.T) {
	good := specDir(t, map[string]string{"alice.yaml": goodSpec})
	bad := specDir(t, map[string]string{"alice.yaml": goodSpec, "bob.yaml": badSpec})
	pinned := specDir(t, map[string]string{"alice.yaml": goodSpec + "  network: {subnet: 10.99.0.0/29}\n"})
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"valid dir", []string{"validate", good}, 0, "1 spec file(s) valid"},
		{"examples", []string{"validate", "../../specs"}, 0, "spec file(s) valid"},
		{"invalid dir", []string{"validate", bad}, 1, "bob.yaml:7:16: spec.allowCIDRs[0]: 127.0.0.0/8 overlaps 127.0.0.0/8, which reaches the host's loopback; remove it"},
		{"single file", []string{"validate", filepath.Join(bad, "bob.yaml")}, 1, "1 of 1 spec file(s) invalid"},
		{"flag after dir", []string{"validate", bad, "--format", "github"}, 1, "::error file=" + filepath.Join(bad, "bob.yaml") + ",line=7,col=16::spec.allowCIDRs[0]: 127.0.0.0/8"},
		{"duplicate across args", []string{"validate", good, filepath.Join(bad, "alice.yaml")}, 1, `bottle "alice" is defined by more than one file`},
		{"pool flag", []string{"validate", "--subnet-pool", "127.0.0.0/8", good}, 0, "valid"},
		{"subnet outside pool", []string{"validate", pinned}, 1, "spec.network.subnet: 10.99.0.0/29 is outside the subnet pool 10.213.0.0/16 (--subnet-pool)"},
		{"subnet outside pool allowed", []string{"validate", "--allow-subnet-outside-pool", pinned}, 0, "1 spec file(s) valid"},
		{"subnet inside another pool", []string{"validate", "--subnet-pool", "10.99.0.0/16", pinned}, 0, "1 spec file(s) valid"},
		{"missing path", []string{"validate", filepath.Join(good, "nope")}, 2, ""},
		{"bad format", []string{"validate", "--format", "xml", good}, 2, ""},
		{"bad pool", []string{"validate", "--subnet-pool", "10.1.2.3/16", good}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			if !strings.Contains(out, tt.contains) {
				t.Fatalf("stdout lacks %q:\n%s", tt.contains, out)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	bad := specDir(t, map[string]string{"alice.yaml": goodSpec, "bob.yaml": badSpec})
	code, out, _ := runCmd(t, "validate", "--format", "json", bad)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var got struct {
		Valid    bool
		Files    []string
		Bottles  []string
		Problems []struct {
			File, Field, Message string
			Line, Column         int
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err, out)
	}
	if got.Valid || len(got.Files) != 2 || len(got.Bottles) != 1 || len(got.Problems) != 1 {
		t.Fatalf("%+v", got)
	}
	p := got.Problems[0]
	if p.Line != 7 || p.Column != 16 || p.Field != "spec.allowCIDRs[0]" || !strings.Contains(p.Message, "loopback") {
		t.Fatalf("%+v", p)
	}
}

// validate runs offline: a workspace whose host path only the reconciler's
// host can vouch for is valid, with a note saying what was not checked;
// one refused as written is invalid.
func TestValidateWorkspace(t *testing.T) {
	const ws = goodSpec + "  workspace: {hostPath: /srv/bottles/alice/work, guestPath: /work}\n"
	dir := specDir(t, map[string]string{"alice.yaml": ws})
	file := filepath.Join(dir, "alice.yaml")
	note := "spec.workspace.hostPath: not checked here: whether /srv/bottles/alice/work exists on the reconciler's host"
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"text", []string{"validate", dir}, 0, "note: " + file + ":7:25: " + note},
		{"github", []string{"validate", "--format", "github", dir}, 0, "::notice file=" + file + ",line=7,col=25::" + note},
		{"json", []string{"validate", "--format", "json", dir}, 0, `"unchecked": [`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.contains) {
				t.Fatalf("exit %d, want %d; stdout lacks %q?\n%s\n%s", code, tt.code, tt.contains, out, errs)
			}
		})
	}
	bad := specDir(t, map[string]string{"alice.yaml": strings.Replace(ws, "/srv/bottles/alice/work", "/var/lib/docker", 1)})
	if code, out, _ := runCmd(t, "validate", bad); code != 1 || !strings.Contains(out, "spec.workspace.hostPath: /var/lib/docker is /var/lib/docker, which is Docker's data directory") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestSchemaCommand(t *testing.T) {
	code, out, _ := runCmd(t, "schema")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("exit %d, output %.100s", code, out)
	}
	// Exactly the embedded schema the loader validates with, nothing else.
	if strings.TrimSpace(out) != strings.TrimSpace(string(schema.JSON)) {
		t.Fatalf("schema output differs from the embedded schema")
	}
}

func TestGithubEscaping(t *testing.T) {
	if got := escapeProperty("a:b,c%\n"); got != "a%3Ab%2Cc%25%0A" {
		t.Fatal(got)
	}
}

func TestStateDirInsideSpecDirIsRefused(t *testing.T) {
	dir := specDir(t, map[string]string{"alice.yaml": goodSpec})
	code, _, errs := runCmd(t, "plan", "--state-dir", filepath.Join(dir, "state"), dir)
	if code != 2 || !strings.Contains(errs, "is inside the spec directory") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}

// TestValidateGithubExact checks the annotation format byte for byte: one
// ::error line per problem, in problem order, then the summary.
func TestValidateGithubExact(t *testing.T) {
	twoBad := `apiVersion: bottle-reconcile/v1alpha1
kind: Bottle
metadata:
  name: carol
spec:
  image: ghcr.io/acme/agent:1.4
  alowCIDRs: [198.51.100.0/24]
  env: {HTTP_PROXY: "100%"}
`
	dir := specDir(t, map[string]string{"alice.yaml": goodSpec, "bob.yaml": badSpec, "carol.yaml": twoBad})
	code, out, errs := runCmd(t, "validate", "--format=github", dir)
	if code != 1 {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	f := func(name string) string { return escapeProperty(filepath.Join(dir, name)) }
	want := strings.Join([]string{
		"::error file=" + f("bob.yaml") + ",line=7,col=16::spec.allowCIDRs[0]: 127.0.0.0/8 overlaps 127.0.0.0/8, which reaches the host's loopback; remove it",
		"::error file=" + f("carol.yaml") + ",line=7,col=3::spec.alowCIDRs: unknown field; did you mean allowCIDRs?",
		"::error file=" + f("carol.yaml") + ",line=8,col=9::spec.env.HTTP_PROXY: is set by bottle-reconcile itself (it points the guest at its bundle); remove it",
		"2 of 3 spec file(s) invalid, 3 problem(s)",
		"",
	}, "\n")
	if out != want {
		t.Fatalf("github output:\n%s\nwant:\n%s", out, want)
	}
}

func TestGithubAnnotation(t *testing.T) {
	tests := []struct {
		p    spec.Problem
		want string
	}{
		{spec.Problem{File: "specs/a,b:c.yaml", Line: 3, Column: 5, Field: "spec.env.X", Message: "100% wrong\nfix it"},
			"::error file=specs/a%2Cb%3Ac.yaml,line=3,col=5::spec.env.X: 100%25 wrong%0Afix it"},
		{spec.Problem{File: "specs/a.yaml", Line: 1, Message: "YAML syntax error"},
			"::error file=specs/a.yaml,line=1::YAML syntax error"},
		{spec.Problem{File: "specs/a.yaml", Message: "cannot read\r"},
			"::error file=specs/a.yaml::cannot read%0D"},
	}
	for _, tt := range tests {
		if got := githubAnnotation("error", tt.p); got != tt.want {
			t.Errorf("githubAnnotation(%+v) =\n%s\nwant\n%s", tt.p, got, tt.want)
		}
	}
}

// TestValidateDefaultDir runs validate without arguments: it reads ./specs.
func TestValidateDefaultDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "specs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "specs", "bob.yaml"), []byte(badSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	code, out, _ := runCmd(t, "validate")
	if code != 1 || !strings.Contains(out, filepath.Join("specs", "bob.yaml")+":7:16: spec.allowCIDRs[0]") {
		t.Fatalf("exit %d, stdout:\n%s", code, out)
	}
	// No ./specs at all is a usage error, not "nothing to check".
	t.Chdir(t.TempDir())
	if code, _, errs := runCmd(t, "validate"); code != 2 || !strings.Contains(errs, "specs") {
		t.Fatalf("without ./specs: exit %d, stderr %s", code, errs)
	}
}

// TestValidateNeedsNoRuntime runs validate with no Docker daemon and no
// smolvm to be found: it reads only the files.
func TestValidateNeedsNoRuntime(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("PATH", t.TempDir())
	good := specDir(t, map[string]string{"alice.yaml": goodSpec})
	if code, out, errs := runCmd(t, "validate", good); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	bad := specDir(t, map[string]string{"bob.yaml": badSpec})
	if code, out, errs := runCmd(t, "validate", "--format", "json", bad); code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

func TestValidateUsageErrors(t *testing.T) {
	good := specDir(t, map[string]string{"alice.yaml": goodSpec})
	for _, args := range [][]string{
		{"validate", "--bogus", good},
		{"validate", "--format"},
		{"validate", "--format", "", good},
		{"validate", "--subnet-pool", "banana", good},
	} {
		if code, out, errs := runCmd(t, args...); code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and nothing on stdout", args, code, out, errs)
		}
	}
}

// A wildcard over a private-section public suffix is a warning: shown in
// every format, counted in the summary, and the exit code stays 0.
func TestValidateWarnings(t *testing.T) {
	dir := specDir(t, map[string]string{"alice.yaml": goodSpec + "  egress: {allow: [\"*.github.io\"]}\n"})
	file := filepath.Join(dir, "alice.yaml")
	msg := `"*.github.io" covers names that anyone can get under github.io (a public suffix in the private section of the Public Suffix List): any of them can receive what the guest sends; name the hosts you need, e.g. acme.github.io`
	for _, tt := range []struct {
		format, want string
	}{
		{"text", file + ":7:20: warning: spec.egress.allow[0]: " + msg + "\n1 spec file(s) valid, 1 warning(s)\n"},
		{"github", "::warning file=" + escapeProperty(file) + ",line=7,col=20::spec.egress.allow[0]: " + msg + "\n1 spec file(s) valid, 1 warning(s)\n"},
	} {
		code, out, errs := runCmd(t, "validate", "--format", tt.format, dir)
		if code != 0 || out != tt.want {
			t.Errorf("%s: exit %d, output:\n%s\nwant:\n%s\nstderr: %s", tt.format, code, out, tt.want, errs)
		}
	}
	code, out, _ := runCmd(t, "validate", "--format", "json", dir)
	var got struct {
		Valid    bool
		Problems []spec.Problem
		Warnings []spec.Problem
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	want := spec.Problem{File: file, Line: 7, Column: 20, Field: "spec.egress.allow[0]", Message: msg}
	if !got.Valid || len(got.Problems) != 0 || len(got.Warnings) != 1 || got.Warnings[0] != want {
		t.Fatalf("json: %+v", got)
	}
}
