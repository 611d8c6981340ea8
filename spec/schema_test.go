package spec

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/schema"
)

// TestSchemaMatchesTypes keeps the JSON Schema and the Go types in step:
// every field of one is a property of the other, at every level.
func TestSchemaMatchesTypes(t *testing.T) {
	var walk func(path []string, typ reflect.Type)
	walk = func(path []string, typ reflect.Type) {
		var fields []string
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("json"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields = append(fields, tag)
			if f.Type.Kind() == reflect.Struct {
				walk(append(slices.Clone(path), tag), f.Type)
			}
		}
		props := schema.Properties(path)
		slices.Sort(fields)
		slices.Sort(props)
		if !slices.Equal(fields, props) {
			t.Errorf("%v: Go fields %v, schema properties %v", path, fields, props)
		}
	}
	walk(nil, reflect.TypeOf(Bottle{}))
}
