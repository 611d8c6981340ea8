package probe

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"

	smolvmdriver "github.com/bottle-reconcile/bottle-reconcile/drivers/smolvm"
)

// DockerAPI is the part of the Docker client the host side uses;
// *client.Client satisfies it.
type DockerAPI interface {
	ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error)
	NetworkList(ctx context.Context, opts network.ListOptions) ([]network.Summary, error)
	CopyToContainer(ctx context.Context, id, dst string, content io.Reader, opts container.CopyToContainerOptions) error
	ContainerStatPath(ctx context.Context, id, p string) (container.PathStat, error)
	ContainerExecCreate(ctx context.Context, id string, opts container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string, cfg container.ExecAttachOptions) (types.HijackedResponse, error)
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
}

// guest is where the runner runs: a way to put the binary in and run it.
type guest interface {
	// install copies the static binary in and returns its path inside.
	install(ctx context.Context, binary string) (string, error)
	// run runs argv inside and returns its stdout; an error carries stderr.
	run(ctx context.Context, argv []string) ([]byte, error)
	String() string
}

// installName is the runner's file name inside a guest; a random suffix
// keeps two concurrent probes apart.
func installName() string { return "bottle-probe-" + NewToken()[:8] }

// dockerGuest is a docker guest container.
type dockerGuest struct {
	api  DockerAPI
	id   string
	name string
}

func (g dockerGuest) String() string { return "container " + g.name }

func (g dockerGuest) install(ctx context.Context, binary string) (string, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("probe: read runner binary: %w", err)
	}
	dir := "/tmp"
	if st, err := g.api.ContainerStatPath(ctx, g.id, dir); err != nil || !st.Mode.IsDir() {
		dir = "/" // a FROM scratch image may have no /tmp
	}
	name := installName()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := g.api.CopyToContainer(ctx, g.id, dir, &buf, container.CopyToContainerOptions{}); err != nil {
		return "", fmt.Errorf("probe: copy runner into %s: %w", g, err)
	}
	return path.Join(dir, name), nil
}

func (g dockerGuest) run(ctx context.Context, argv []string) ([]byte, error) {
	ex, err := g.api.ContainerExecCreate(ctx, g.id, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, fmt.Errorf("probe: exec in %s: %w", g, err)
	}
	att, err := g.api.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("probe: attach to exec in %s: %w", g, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); done <- err }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("probe: exec in %s: %w", g, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("probe: read exec output in %s: %w", g, err)
	}
	ins, err := g.api.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return nil, fmt.Errorf("probe: inspect exec in %s: %w", g, err)
	}
	if ins.ExitCode != 0 {
		return nil, fmt.Errorf("probe: runner in %s exited %d: %s", g, ins.ExitCode, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// smolvmGuest is a smolvm machine, reached through the smolvm CLI.
type smolvmGuest struct {
	binary  string // the smolvm CLI
	machine string
	timeout time.Duration // the guest-side limit passed to exec
}

func (g smolvmGuest) String() string { return "smolvm machine " + g.machine }

// cpArgs is the smolvm argv that copies the runner in.
func (g smolvmGuest) cpArgs(binary, dst string) []string {
	return []string{"machine", "cp", "--mode", "755", binary, g.machine + ":" + dst}
}

// execArgs is the smolvm argv that runs argv in the machine: `machine exec
// --name NAME [--] CMD...`. --name has no short form (smolvm
// src/cli/machine.rs ExecCmd); "--" is optional there but kept, so an argv
// starting with "-" is never read as a flag.
func (g smolvmGuest) execArgs(argv []string) []string {
	return append([]string{"machine", "exec", "--name", g.machine, "--timeout", humanSeconds(g.timeout), "--"}, argv...)
}

// humanSeconds renders d for exec --timeout, which humantime parses: whole
// seconds, rounded up, since "1.5s" (Go's String) is refused.
func humanSeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", max(1, int64((d+time.Second-1)/time.Second)))
}

func (g smolvmGuest) install(ctx context.Context, binary string) (string, error) {
	if strings.Contains(binary, ":") {
		// smolvm splits SRC on its first ':'.
		return "", fmt.Errorf("probe: runner path %q contains ':', which smolvm cp misreads", binary)
	}
	dst := "/tmp/" + installName()
	if _, err := g.smolvm(ctx, g.cpArgs(binary, dst)); err != nil {
		return "", err
	}
	return dst, nil
}

func (g smolvmGuest) run(ctx context.Context, argv []string) ([]byte, error) {
	return g.smolvm(ctx, g.execArgs(argv))
}

func (g smolvmGuest) smolvm(ctx context.Context, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, g.binary, args...)
	// As the driver does: our proxies, SMOLVM_* and the like would change
	// what smolvm does.
	cmd.Env = smolvmdriver.MinimalEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		code := -1
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return nil, fmt.Errorf("probe: smolvm %s %s (%s) exited %d: %s", args[0], args[1], g, code, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
