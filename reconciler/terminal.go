package reconciler

import (
	"errors"

	cerrdefs "github.com/containerd/errdefs"
)

// Terminal reports whether err is one that trying again will not fix until
// the spec or the world changes, by the errdefs class the drivers give it:
// an invalid argument (a spec or a request the runtime refuses as such), a
// conflict (a foreign container or network holding a name or a subnet), a
// failed precondition (a missing envFromHost variable, a smolvm too old) or
// a refusal (an address a foreign container holds). A bottle failing with
// one is Blocked: it is not backed off, but retried when its spec changes,
// when a runtime event names it, on SIGHUP and at each resync.
//
// Anything that may pass by itself is not terminal, even when it is joined
// with a terminal class: the runtime unavailable, a timeout, a cancelled
// call, and every error without a class.
func Terminal(err error) bool {
	switch {
	case err == nil,
		cerrdefs.IsUnavailable(err), cerrdefs.IsDeadlineExceeded(err), cerrdefs.IsCanceled(err),
		errors.Is(err, errStopping), errors.Is(err, errShutdownTimeout):
		return false
	}
	return cerrdefs.IsInvalidArgument(err) || cerrdefs.IsConflict(err) ||
		cerrdefs.IsFailedPrecondition(err) || cerrdefs.IsPermissionDenied(err)
}
