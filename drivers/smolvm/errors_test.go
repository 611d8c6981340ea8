package smolvm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name     string
		exitCode int
		stderr   string
		runErr   error
		want     func(error) bool // nil: classify returns nil
		wantCode int
	}{
		{name: "success", exitCode: 0},
		{
			name:     "create name taken",
			exitCode: 1,
			stderr:   "Error: config operation failed: create machine: machine 'bottle-alice' already exists or is being created\n",
			want:     cerrdefs.IsConflict, wantCode: 1,
		},
		{
			name:     "vm not found",
			exitCode: 1,
			stderr:   "Error: vm not found: bottle-alice\n",
			want:     cerrdefs.IsNotFound, wantCode: 1,
		},
		{
			name:     "status not found",
			exitCode: 1,
			stderr:   "Error: config operation failed: machine status: machine 'bottle-alice' not found\n",
			want:     cerrdefs.IsNotFound, wantCode: 1,
		},
		{
			name:     "clap invalid cidr",
			exitCode: 2,
			stderr:   "error: invalid value 'x' for '--allow-cidr <CIDR>': invalid CIDR 'x': expected format like 10.0.0.0/8 or 1.1.1.1\n",
			want:     cerrdefs.IsInvalidArgument, wantCode: 2,
		},
		{
			name:     "bad name",
			exitCode: 1,
			stderr:   "Error: config operation failed: create machine: machine name contains invalid character: '.'\n",
			want:     cerrdefs.IsInvalidArgument, wantCode: 1,
		},
		{
			name:     "exec on stopped machine is not not-found",
			exitCode: 1,
			stderr:   "Error: agent operation failed: connect: machine 'bottle-alice' is not running. Use 'smolvm machine start --name bottle-alice' first.\n",
			want: func(err error) bool {
				return !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) && !cerrdefs.IsInvalidArgument(err)
			},
			wantCode: 1,
		},
		{
			name:   "timeout",
			runErr: fmt.Errorf("no answer within 1s: %w", context.DeadlineExceeded),
			want:   cerrdefs.IsDeadlineExceeded, wantCode: -1,
		},
		{
			name:   "not started",
			runErr: errors.New(`exec: "smolvm": executable file not found in $PATH`),
			want: func(err error) bool {
				return strings.Contains(err.Error(), "executable file not found") && !cerrdefs.IsDeadlineExceeded(err)
			},
			wantCode: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify([]string{"smolvm", "machine", "start", "--name", "bottle-alice"},
				result{stderr: []byte(tt.stderr), exitCode: tt.exitCode}, tt.runErr)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("classify = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("classify = nil, want an error")
			}
			if !tt.want(err) {
				t.Errorf("classify = %v: wrong class", err)
			}
			var ce *CmdError
			if !errors.As(err, &ce) {
				t.Fatalf("classify = %T, want *CmdError", err)
			}
			if ce.ExitCode != tt.wantCode {
				t.Errorf("ExitCode = %d, want %d", ce.ExitCode, tt.wantCode)
			}
			if tt.stderr != "" && !strings.Contains(err.Error(), strings.TrimSpace(tt.stderr)) {
				t.Errorf("error %q does not quote stderr", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{
			name: "short flag with value",
			in:   []string{"machine", "create", "-e", "TOKEN=hunter2", "-e", "PATH=/secret/bin"},
			want: []string{"machine", "create", "-e", "TOKEN=<redacted>", "-e", "PATH=<redacted>"},
		},
		{
			name: "forwarded key kept",
			in:   []string{"machine", "create", "-e", "TOKEN"},
			want: []string{"machine", "create", "-e", "TOKEN"},
		},
		{
			name: "long and joined forms",
			in:   []string{"--env", "A=1", "--env=B=2", "-eC=3"},
			want: []string{"--env", "A=<redacted>", "--env=B=<redacted>", "-eC=<redacted>"},
		},
		{
			name: "labels untouched",
			in:   []string{"--label", "k=v", "--name", "x"},
			want: []string{"--label", "k=v", "--name", "x"},
		},
		{
			name: "workload after -- untouched",
			in:   []string{"-e", "A=1", "--", "env", "-e", "B=2"},
			want: []string{"-e", "A=<redacted>", "--", "env", "-e", "B=2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]string(nil), tt.in...)
			if got := redact(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("redact = %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(tt.in, in) {
				t.Errorf("redact modified its input")
			}
		})
	}
}

func TestCmdErrorRedactsEnv(t *testing.T) {
	err := classify([]string{"smolvm", "machine", "create", "-e", "PATH=/opt/s3cr3t", "-e", "TOKEN"},
		result{exitCode: 1, stderr: []byte("Error: boom\n")}, nil)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error leaks an env value: %v", err)
	}
	if !strings.Contains(err.Error(), "-e PATH=<redacted> -e TOKEN") {
		t.Errorf("error %q does not show the redacted argv", err)
	}
}
