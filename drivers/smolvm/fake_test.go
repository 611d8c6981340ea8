package smolvm

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"
)

// fakeRunner records every call and answers from a table keyed by the
// subcommand ("--version", "machine ls", "machine create", ...). A missing
// key answers exit 0 with no output.
type fakeRunner struct {
	mu      sync.Mutex
	calls   []call
	answers map[string]fakeAnswer
}

type fakeAnswer struct {
	stdout, stderr string
	exitCode       int
	err            error
}

func subcommand(args []string) string {
	if len(args) >= 2 && args[0] == "machine" {
		return args[0] + " " + args[1]
	}
	if len(args) > 0 {
		return args[0]
	}
	return ""
}

func (f *fakeRunner) run(_ context.Context, c call) (result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	a := f.answers[subcommand(c.args)]
	return result{stdout: []byte(a.stdout), stderr: []byte(a.stderr), exitCode: a.exitCode}, a.err
}

// subcommands lists the calls made, one subcommand each.
func (f *fakeRunner) subcommands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, subcommand(c.args))
	}
	return out
}

func (f *fakeRunner) find(sub string) (call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if subcommand(c.args) == sub {
			return c, true
		}
	}
	return call{}, false
}

// newFakeDriver returns a Driver whose smolvm is f, answering smolvm 1.9.2
// and an empty listing unless f says otherwise, and whose Docker has every
// image (fakeImages in anyRef mode) unless opts says otherwise.
func newFakeDriver(t *testing.T, f *fakeRunner, opts Options) *Driver {
	t.Helper()
	if f.answers == nil {
		f.answers = map[string]fakeAnswer{}
	}
	if _, ok := f.answers["--version"]; !ok {
		f.answers["--version"] = fakeAnswer{stdout: "smolvm 1.9.2\n"}
	}
	if _, ok := f.answers["machine ls"]; !ok {
		f.answers["machine ls"] = fakeAnswer{stdout: "[]\n"}
	}
	if opts.Images == nil {
		opts.Images = &fakeImages{anyRef: true}
	}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	d, err := New(testr.New(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	d.run = f
	if !opts.NoHostLayer {
		d.layer = fakeLayer(t)
	}
	return d
}

func joined(args []string) string { return strings.Join(args, " ") }
