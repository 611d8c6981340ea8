package spec

import "testing"

func TestSmolvmHostEnv(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		// Read by smolvm itself (v1.9.2).
		{"SSH_AUTH_SOCK", true}, {"SMOL_CLOUD_TOKEN", true}, {"SMOL_NO_HOT_RELOAD", true},
		{"CUDA_VISIBLE_DEVICES", true}, {"VIRGL_RENDER_SERVER_PATH", true}, {"EDITOR", true},
		{"RUST_LOG", true}, {"SMOLVM_EGRESS_FLOOR", true}, {"SMOLVM_PUBLISH_ADDR", true},
		// Proxies, in either case.
		{"HTTPS_PROXY", true}, {"https_proxy", true}, {"HTTP_PROXY", true}, {"http_proxy", true},
		{"ALL_PROXY", true}, {"all_proxy", true}, {"no_proxy", true},
		// The loader and the shell.
		{"LD_PRELOAD", true}, {"PATH", true}, {"BASH_ENV", true},
		// Ordinary guest variables.
		{"GH_TOKEN", false}, {"API_TOKEN", false}, {"SMOLX", false}, {"EDITORIAL", false},
	}
	for _, tt := range tests {
		if got := SmolvmHostEnv(tt.name); got != tt.want {
			t.Errorf("SmolvmHostEnv(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
