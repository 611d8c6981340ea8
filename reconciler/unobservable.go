package reconciler

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnobservable marks an Observe error meaning the runtime cannot be
// asked at all (its binary is gone from PATH, a broken upgrade), as opposed
// to one failed call. Only a guest driver may report it: the pass goes on
// for the other guest kinds, and every bottle whose guest might be of that
// kind is held, never torn down, since a live guest could be left running
// with its egress allowed to an address the pool hands to the next bottle.
var ErrUnobservable = errors.New("runtime cannot be observed")

// LabelGuestKind records, on a bottle's network and bundle, the kind of
// guest it was made for, so a bottle that lost its guest can be told
// apart from one whose guest cannot be seen.
const LabelGuestKind = "dev.bottle-reconcile.guest-kind"

// unseenGuest says why bottle ob may have a guest this pass cannot see, or
// "": a guest kind is unobservable, no guest of the bottle was observed, and
// its resources do not say it was made for a kind that was observed.
func (o Observed) unseenGuest(ob *ObservedBottle) string {
	if len(o.Unobservable) == 0 || ob == nil || len(ob.Of(RoleGuest)) > 0 {
		return ""
	}
	for _, r := range ob.Resources {
		if k := r.Labels[LabelGuestKind]; k != "" && o.Unobservable[k] == "" {
			return "" // made for a guest kind this pass sees: no guest is hidden
		}
	}
	var kinds []string
	for k, why := range o.Unobservable {
		kinds = append(kinds, fmt.Sprintf("%s (%s)", k, why))
	}
	sort.Strings(kinds)
	return "no guest of this bottle is seen, but guests of kind " + strings.Join(kinds, ", ") +
		" cannot be observed, so one may be running"
}
