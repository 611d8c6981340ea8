package images

import (
	"fmt"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// wantsPull decides, from the policy and whether the daemon has the image,
// whether to pull. The empty policy is spec.PullMissing, the default.
func wantsPull(policy string, local bool) (bool, error) {
	switch policy {
	case spec.PullMissing, "":
		return !local, nil
	case spec.PullAlways:
		return true, nil
	case spec.PullNever:
		return false, nil
	}
	return false, fmt.Errorf("pull policy %q is not one of %s, %s, %s: %w",
		policy, spec.PullMissing, spec.PullAlways, spec.PullNever, cerrdefs.ErrInvalidArgument)
}
