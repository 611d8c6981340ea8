package smolvm

import (
	"context"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		out     string
		want    semver
		wantErr bool
	}{
		{out: "smolvm 1.9.2\n", want: semver{1, 9, 2}},
		{out: "smolvm 1.8.0", want: semver{1, 8, 0}},
		{out: "smolvm 1.10.0-rc.1", want: semver{1, 10, 0}},
		{out: "smolvm 0.8.0\n", want: semver{0, 8, 0}},
		{out: "", wantErr: true},
		{out: "garbage", wantErr: true},
		{out: "smolvm 1.9", wantErr: true},
		{out: "smolvm-bin 1.9.2", wantErr: true},
		{out: "smolvm v1.9.2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.out, func(t *testing.T) {
			got, err := parseVersion(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseVersion(%q) error = %v, wantErr %v", tt.out, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("parseVersion(%q) = %v, want %v", tt.out, got, tt.want)
			}
		})
	}
}

func TestVersionGate(t *testing.T) {
	tests := []struct {
		out     string
		wantErr string // substring; empty means accepted
	}{
		{out: "smolvm 1.7.9\n", wantErr: "smolvm 1.7.9 is too old: need 1.8.0 or later for machine create --label"},
		{out: "smolvm 0.8.0\n", wantErr: "too old"},
		{out: "smolvm 1.8.0\n"},
		{out: "smolvm 1.9.2\n"},
		{out: "smolvm 2.0.0\n"},
		{out: "not a version\n", wantErr: "unrecognised version output"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.out), func(t *testing.T) {
			f := &fakeRunner{answers: map[string]fakeAnswer{"--version": {stdout: tt.out}}}
			d := newFakeDriver(t, f, Options{})
			_, err := d.Create(context.Background(), testWant())
			_, created := f.find("machine create")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if !created {
					t.Error("no machine create call")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Create error = %v, want it to contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), `create machine "bottle-alice"`) {
				t.Errorf("error %q does not name the machine", err)
			}
			if strings.Contains(tt.wantErr, "too old") && !cerrdefs.IsFailedPrecondition(err) {
				t.Errorf("error %v is not a failed precondition", err)
			}
			if created {
				t.Error("machine create was called despite the gate")
			}
		})
	}
}

func TestVersionCached(t *testing.T) {
	f := &fakeRunner{}
	d := newFakeDriver(t, f, Options{})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		v, err := d.Version(ctx)
		if err != nil || v != "1.9.2" {
			t.Fatalf("Version = %q, %v; want 1.9.2", v, err)
		}
	}
	if _, err := d.Create(ctx, testWant()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range f.subcommands() {
		if s == "--version" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("smolvm --version called %d times, want 1", n)
	}
}

func TestVersionFailureNotCached(t *testing.T) {
	f := &fakeRunner{answers: map[string]fakeAnswer{"--version": {exitCode: 1, stderr: "Error: boom\n"}}}
	d := newFakeDriver(t, f, Options{})
	ctx := context.Background()
	if _, err := d.Version(ctx); err == nil {
		t.Fatal("Version succeeded on a failing smolvm")
	}
	f.answers["--version"] = fakeAnswer{stdout: "smolvm 1.8.1\n"}
	if v, err := d.Version(ctx); err != nil || v != "1.8.1" {
		t.Fatalf("Version = %q, %v; want 1.8.1 after recovery", v, err)
	}
}
