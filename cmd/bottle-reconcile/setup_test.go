package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/drivers/smolvm"
)

func TestSmolvmTimeoutFlags(t *testing.T) {
	tests := []struct {
		name                string
		args                []string
		wantErr             string // "" means valid
		wantCall, wantStart time.Duration
	}{
		{"defaults", nil, "", smolvm.DefaultTimeout, smolvm.DefaultCreateTimeout},
		{"both set", []string{"--smolvm-timeout", "3s", "--smolvm-create-timeout", "5s"}, "", 3 * time.Second, 5 * time.Second},
		{"zero call timeout", []string{"--smolvm-timeout", "0s"}, "--smolvm-timeout 0s: must be more than 0", 0, 0},
		{"negative call timeout", []string{"--smolvm-timeout", "-1s"}, "--smolvm-timeout -1s: must be more than 0", 0, 0},
		{"zero create timeout", []string{"--smolvm-create-timeout", "0"}, "--smolvm-create-timeout 0s: must be more than 0", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c common
			fs := newFlagSet("", io.Discard, "")
			c.register(fs)
			dir := t.TempDir()
			args := append([]string{"--state-dir", t.TempDir()}, tt.args...)
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			err := c.resolve(dir)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("resolve: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("resolve: got %v, want an error containing %q", err, tt.wantErr)
			case tt.wantErr == "" && (c.smolvmTimeout != tt.wantCall || c.smolvmCreate != tt.wantStart):
				t.Errorf("timeouts %s/%s, want %s/%s", c.smolvmTimeout, c.smolvmCreate, tt.wantCall, tt.wantStart)
			}
		})
	}
}
