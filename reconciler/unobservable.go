package reconciler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// unseenGuest says why bottle ob may have a guest this pass cannot see, or
// "": a guest kind is unobservable, no guest of the bottle was observed, and
// its resources do not say it was made for a kind that was observed.
func (o Observed) unseenGuest(ob *ObservedBottle) string {
	if len(o.Unobservable) == 0 || ob == nil || len(ob.Of(bottle.RoleGuest)) > 0 {
		return ""
	}
	for _, r := range ob.Resources {
		if k := r.Labels[bottle.LabelGuestKind]; k != "" && o.Unobservable[k] == "" {
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
