package reconciler

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

func TestResourcesAfter(t *testing.T) {
	net := bottle.Resource{Kind: "net", Role: bottle.RoleNetwork, Name: "bottle-a", State: bottle.StateRunning, Subnet: netip.MustParsePrefix("10.0.0.0/29")}
	bun := bottle.Resource{Kind: "bundle", Role: bottle.RoleBundle, Name: "bottle-a-bundle", State: bottle.StateStopped, Detail: "exited (1)", Addr: netip.MustParseAddr("10.0.0.2")}
	vm := bottle.Resource{Kind: "smolvm", Role: bottle.RoleGuest, Name: "bottle-a-guest", State: bottle.StateRunning}
	newBun := bottle.Resource{Kind: "bundle", Role: bottle.RoleBundle, Name: "bottle-a-bundle", State: bottle.StateRunning, Addr: netip.MustParseAddr("10.0.0.2")}
	op := func(a Action, r bottle.Resource) Op { return Op{Action: a, Kind: r.Kind, Role: r.Role, Name: r.Name} }
	srNet := StatusResource{Role: bottle.RoleNetwork, Kind: "net", Name: "bottle-a", State: bottle.StateRunning, Subnet: "10.0.0.0/29"}
	srVM := StatusResource{Role: bottle.RoleGuest, Kind: "smolvm", Name: "bottle-a-guest", State: bottle.StateRunning}
	tests := []struct {
		name string
		ob   *ObservedBottle
		res  *BottleResult
		want []StatusResource
	}{
		{"nothing", nil, nil, nil},
		{"as observed, in role order", &ObservedBottle{Resources: []bottle.Resource{vm, bun, net}}, nil, []StatusResource{
			srNet,
			{Role: bottle.RoleBundle, Kind: "bundle", Name: "bottle-a-bundle", State: bottle.StateStopped, Detail: "exited (1)", Addr: "10.0.0.2"},
			srVM,
		}},
		{"a bundle replaced beside a frozen guest", &ObservedBottle{Resources: []bottle.Resource{net, bun, vm}}, &BottleResult{
			Done:    []Op{op(ActionStop, vm), op(ActionDelete, bun), op(ActionCreate, newBun), op(ActionStart, vm)},
			Created: []bottle.Resource{newBun},
		}, []StatusResource{
			srNet,
			{Role: bottle.RoleBundle, Kind: "bundle", Name: "bottle-a-bundle", State: bottle.StateRunning, Addr: "10.0.0.2"},
			srVM,
		}},
		{"a guest stopped", &ObservedBottle{Resources: []bottle.Resource{net, vm}}, &BottleResult{Done: []Op{op(ActionStop, vm)}},
			[]StatusResource{srNet, {Role: bottle.RoleGuest, Kind: "smolvm", Name: "bottle-a-guest", State: bottle.StateStopped}}},
		{"created with no resource returned: named by the operation", nil, &BottleResult{
			Done: []Op{op(ActionCreate, net)}, Created: []bottle.Resource{{}},
		}, []StatusResource{{Role: bottle.RoleNetwork, Kind: "net", Name: "bottle-a", State: bottle.StateRunning}}},
		{"one per kind and name, the last seen", &ObservedBottle{Resources: []bottle.Resource{bun, newBun}}, nil,
			[]StatusResource{{Role: bottle.RoleBundle, Kind: "bundle", Name: "bottle-a-bundle", State: bottle.StateRunning, Addr: "10.0.0.2"}}},
		{"a start of what was not observed records nothing", &ObservedBottle{Resources: []bottle.Resource{net}}, &BottleResult{Done: []Op{op(ActionStart, vm)}},
			[]StatusResource{srNet}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resourcesAfter(tt.ob, tt.res); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resourcesAfter =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
