package dockertest

import (
	"reflect"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// WantLabels are the labels a pass gives bottleName's resource of role r in
// instance inst, with a made-up spec hash.
func WantLabels(inst, bottleName string, r bottle.Role) map[string]string {
	return map[string]string{
		bottle.LabelManagedBy:   bottle.ManagedByValue,
		bottle.LabelInstance:    inst,
		bottle.LabelBottle:      bottleName,
		bottle.LabelRole:        string(r),
		bottle.LabelHash:        "h-" + bottleName,
		bottle.LabelHashVersion: "1",
	}
}

// Want is what a pass asks of bottleName's resource of role r: its name and
// labels; a test adds what the role needs.
func Want(inst, bottleName string, r bottle.Role) bottle.Want {
	return bottle.Want{
		Bottle: bottleName,
		Role:   r,
		Name:   bottle.Names(bottleName, r),
		Labels: WantLabels(inst, bottleName, r),
	}
}

// Mine keeps the resources of instance inst by name: drivers return every
// instance's, and other tests or a reconciler may run alongside.
func Mine(rs []bottle.Resource, inst string) map[string]bottle.Resource {
	m := map[string]bottle.Resource{}
	for _, r := range rs {
		if r.Instance == inst {
			m[r.Name] = r
		}
	}
	return m
}

// SameResource compares resources; a nil Labels on either side is not
// compared.
func SameResource(a, b bottle.Resource) bool {
	if a.Labels == nil || b.Labels == nil {
		a.Labels, b.Labels = nil, nil
	}
	return reflect.DeepEqual(a, b)
}
