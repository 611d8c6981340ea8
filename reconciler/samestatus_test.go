package reconciler

import (
	"reflect"
	"testing"
	"time"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// sameStatus must see every field but LastReconciled, so a change of any
// of them is written.
func TestSameStatus(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Minute)
	base := Status{Bottle: "a", State: StatusReady, Source: "a.yaml", Fingerprint: "f", NextRetry: &now,
		Resources: []StatusResource{{Role: bottle.RoleNetwork, Name: "bottle-a", State: bottle.StateRunning}}, LastReconciled: now}
	same := base
	same.LastReconciled = later
	nr := now.UTC() // the same instant, as read back from JSON
	same.NextRetry = &nr
	if !sameStatus(base, same) {
		t.Error("statuses that differ only in LastReconciled and time zone are not the same")
	}
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "LastReconciled" {
			continue
		}
		other := base
		o := reflect.ValueOf(&other).Elem().Field(i)
		switch f.Name {
		case "NextRetry":
			o.Set(reflect.ValueOf(&later))
		case "Resources":
			o.Set(reflect.ValueOf([]StatusResource{{Role: bottle.RoleNetwork, Name: "bottle-a", State: bottle.StateStopped}}))
		default:
			switch o.Kind() {
			case reflect.String:
				o.SetString("other")
			case reflect.Bool:
				o.SetBool(!o.Bool())
			case reflect.Int:
				o.SetInt(o.Int() + 1)
			default:
				t.Fatalf("field %s of kind %s not covered by this test", f.Name, o.Kind())
			}
		}
		if sameStatus(base, other) {
			t.Errorf("a change of %s is not seen", f.Name)
		}
	}
}
