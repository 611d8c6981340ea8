package smolvm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
)

// TestSmolvmEnvMinimal runs a driver built by New, in a process whose
// environment holds everything that would change smolvm's behaviour, and
// reads back from the emulator's calls.jsonl what each smolvm call saw.
// Not parallel: it sets this process's environment.
func TestSmolvmEnvMinimal(t *testing.T) {
	if emulatorBuildErr != nil {
		t.Fatal(emulatorBuildErr)
	}
	data := t.TempDir()
	leaks := map[string]string{
		"SMOLVM_EGRESS_FLOOR": "strict", "SMOLVM_PUBLISH_ADDR": "0.0.0.0", "SMOLVM_MAX_IMAGE_BYTES": "1",
		"HTTPS_PROXY": "http://192.0.2.1:3128", "https_proxy": "http://192.0.2.1:3128",
		"HTTP_PROXY": "http://192.0.2.1:3128", "http_proxy": "http://192.0.2.1:3128",
		"ALL_PROXY": "socks5://192.0.2.1", "all_proxy": "socks5://192.0.2.1", "NO_PROXY": "*",
		"SSH_AUTH_SOCK": "/tmp/agent.sock", "SMOL_CLOUD_TOKEN": "cloud-secret", "SMOL_NO_HOT_RELOAD": "1",
		"CUDA_VISIBLE_DEVICES": "0", "VIRGL_RENDER_SERVER_PATH": "/x", "EDITOR": "vi", "RUST_LOG": "trace",
		"UNRELATED_SECRET": "s3cr3t",
	}
	for k, v := range leaks {
		t.Setenv(k, v)
	}
	t.Setenv("SMOLVM_DATA_DIR", data)
	t.Setenv("TMPDIR", t.TempDir())

	// The host layer would change the host's firewall: hostlayer_test.go's.
	d, err := New(testr.New(t), Options{NoHostLayer: true})
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{emulated: true, dataDir: data, env: os.Environ()}
	w := testWant()
	w.Guest.Image = filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(w.Guest.Image, []byte("archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.cleanup(t, w.Name)
	if _, err := d.Create(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(context.Background(), observeOne(t, d, w.Name)); err != nil {
		t.Fatal(err)
	}

	allowed := append(slices.Clone(smolvmEnvNames), "API_TOKEN", "EMPTY", "GH_TOKEN")
	calls := recordedCalls(t, data)
	if len(calls) < 4 { // --version, ls, create, start, ls, stop
		t.Fatalf("only %d calls recorded", len(calls))
	}
	for _, c := range calls {
		for _, kv := range c.env {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(allowed, k) {
				t.Errorf("smolvm %q saw %s", c.args, kv)
			}
		}
		if !slices.Contains(c.env, "SMOLVM_DATA_DIR="+data) || !slices.Contains(c.env, "PATH="+os.Getenv("PATH")) {
			t.Errorf("smolvm %q lacks PATH or SMOLVM_DATA_DIR: %q", c.args, c.env)
		}
		forwards := slices.Contains(c.env, "API_TOKEN="+secretToken) && slices.Contains(c.env, "GH_TOKEN="+secretHost)
		if isCreate := len(c.args) > 1 && c.args[1] == "create"; forwards != isCreate {
			t.Errorf("smolvm %q: forwarded values present = %v, want only on create", c.args, forwards)
		}
	}
}
