package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"valid dir", []string{"validate", good}, 0, "1 spec file(s) valid"},
		{"examples", []string{"validate", "../../specs"}, 0, "spec file(s) valid"},
		{"invalid dir", []string{"validate", bad}, 1, "bob.yaml:7:16: spec.allowCIDRs[0]: 127.0.0.0/8 reaches the host's loopback; remove it"},
		{"single file", []string{"validate", filepath.Join(bad, "bob.yaml")}, 1, "1 of 1 spec file(s) invalid"},
		{"flag after dir", []string{"validate", bad, "--format", "github"}, 1, "::error file=" + filepath.Join(bad, "bob.yaml") + ",line=7,col=16::spec.allowCIDRs[0]: 127.0.0.0/8"},
		{"duplicate across args", []string{"validate", good, filepath.Join(bad, "alice.yaml")}, 1, `bottle "alice" is defined by more than one file`},
		{"pool flag", []string{"validate", "--subnet-pool", "127.0.0.0/8", good}, 0, "valid"},
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

func TestSchemaCommand(t *testing.T) {
	code, out, _ := runCmd(t, "schema")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("exit %d, output %.100s", code, out)
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
