package images

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

func TestCredentialsFrom(t *testing.T) {
	dir := t.TempDir()
	basic := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
	cfg := `{"auths":{
		"registry.example:5000": {"auth": "` + basic("alice", "s3cret") + `"},
		"https://index.docker.io/v1/": {"auth": "` + basic("bob", "hub-token") + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref, wantUser, wantPass string
	}{
		{"registry.example:5000/team/agent:1", "alice", "s3cret"},
		{"busybox", "bob", "hub-token"},
		{"docker.io/library/busybox:1", "bob", "hub-token"},
		{"ghcr.io/acme/agent:1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			named, err := reference.ParseNormalizedNamed(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := credentialsFrom(dir, named)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantUser == "" {
				if enc != "" {
					t.Errorf("credentials %q for a registry the config does not name", enc)
				}
				return
			}
			raw, err := base64.URLEncoding.DecodeString(enc)
			if err != nil {
				t.Fatalf("not base64url: %q: %v", enc, err)
			}
			var got struct{ Username, Password string }
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Username != tt.wantUser || got.Password != tt.wantPass {
				t.Errorf("user %q password %q, want %q %q", got.Username, got.Password, tt.wantUser, tt.wantPass)
			}
		})
	}
}

func TestCredentialsFromNoConfig(t *testing.T) {
	named, _ := reference.ParseNormalizedNamed("ghcr.io/acme/agent:1")
	if enc, err := credentialsFrom(filepath.Join(t.TempDir(), "absent"), named); err != nil || enc != "" {
		t.Errorf("no config: %q, %v; want an anonymous pull", enc, err)
	}
}

func TestCredentialsFromBadConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	named, _ := reference.ParseNormalizedNamed("ghcr.io/acme/agent:1")
	_, err := credentialsFrom(dir, named)
	if err == nil || !strings.Contains(err.Error(), "read docker config in "+dir+" for registry ghcr.io") {
		t.Errorf("bad config: %v", err)
	}
}
