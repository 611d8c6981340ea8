package smolvm

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// minVersion is the first smolvm with `machine create --label` (v1.8.0,
// commit 8aed1aca); without labels nothing can be matched to its bottle.
// Names have been flags since v1.0.2, so the label floor covers them too.
var minVersion = semver{1, 8, 0}

// semver is a numeric major.minor.patch.
type semver [3]int

func (v semver) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

func (v semver) less(w semver) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// versionRE matches `smolvm --version` output ("smolvm 1.9.2", clap's
// #[command(version)]). A pre-release or build suffix is allowed and
// ignored: only the numbers decide the gate.
var versionRE = regexp.MustCompile(`^smolvm (\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$`)

// parseVersion reads the output of `smolvm --version`.
func parseVersion(out string) (semver, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return semver{}, fmt.Errorf("unrecognised version output %q, want \"smolvm X.Y.Z\"", truncate(strings.TrimSpace(out), 80))
	}
	var v semver
	for i := range v {
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return semver{}, fmt.Errorf("unrecognised version output %q: %w", truncate(out, 80), err)
		}
		v[i] = n
	}
	return v, nil
}

// checkVersion refuses a smolvm that cannot do what this driver needs.
func checkVersion(v semver) error {
	if v.less(minVersion) {
		return fmt.Errorf("smolvm %s is too old: need %s or later for machine create --label, which bottle-reconcile uses to recognise its machines: %w",
			v, minVersion, cerrdefs.ErrFailedPrecondition)
	}
	return nil
}

// Version returns the version of the smolvm binary, asking it once per
// Driver; a failed ask is not cached, so a transient failure heals.
func (d *Driver) Version(ctx context.Context) (string, error) {
	v, err := d.version(ctx)
	if err != nil {
		return "", err
	}
	return v.String(), nil
}

func (d *Driver) version(ctx context.Context) (semver, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ver != nil {
		return *d.ver, nil
	}
	res, err := d.exec(ctx, call{args: []string{"--version"}, timeout: d.opts.Timeout})
	if err != nil {
		return semver{}, fmt.Errorf("smolvm: get version: %w", err)
	}
	v, err := parseVersion(string(res.stdout))
	if err != nil {
		return semver{}, fmt.Errorf("smolvm: get version: %w", err)
	}
	d.ver = &v
	return v, nil
}

// gate checks, once per Driver, that smolvm is new enough to create machines.
func (d *Driver) gate(ctx context.Context) error {
	v, err := d.version(ctx)
	if err != nil {
		return err
	}
	if err := checkVersion(v); err != nil {
		return fmt.Errorf("smolvm: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
