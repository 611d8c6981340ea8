package review

import (
	"encoding/json"
	"reflect"
	"sort"

	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// opaque are the fields reported whole: a map of env values is named, never
// walked, so neither its values nor its keys reach a review.
var opaque = map[string]bool{"spec.env": true}

// Fields returns the spec fields that differ between a and b, by name
// (e.g. spec.image, spec.resources.cpus), sorted. Both are specs with the
// loader's defaults applied. Fields are found from the spec's own JSON form,
// so a field added to spec.Spec is covered without a list to keep.
func Fields(a, b spec.Spec) []string {
	var out []string
	walk("spec", tree(a), tree(b), &out)
	sort.Strings(out)
	return out
}

func tree(s spec.Spec) any {
	data, err := json.Marshal(s)
	if err != nil {
		panic("review: marshal spec: " + err.Error()) // plain data cannot fail
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		panic("review: unmarshal spec: " + err.Error())
	}
	return v
}

func walk(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok || opaque[path] {
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, path)
		}
		return
	}
	keys := map[string]bool{}
	for k := range am {
		keys[k] = true
	}
	for k := range bm {
		keys[k] = true
	}
	for k := range keys {
		walk(path+"."+k, am[k], bm[k], out)
	}
}
