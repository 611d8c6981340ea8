package schema

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateCompilesOnceAndChecks(t *testing.T) {
	if err := Validate(map[string]any{}); err == nil {
		t.Fatal("an empty document passed")
	}
	doc := map[string]any{
		"apiVersion": "bottle-reconcile/v1alpha1",
		"kind":       "Bottle",
		"metadata":   map[string]any{"name": "a"},
		"spec":       map[string]any{"image": "x"},
	}
	if err := Validate(doc); err != nil {
		t.Fatal(err)
	}
	doc["extra"] = true
	if err := Validate(doc); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("additionalProperties not enforced: %v", err)
	}
}

func TestProperties(t *testing.T) {
	got := Properties([]string{"spec", "resources"})
	slices.Sort(got)
	if strings.Join(got, ",") != "cpus,memoryMiB" {
		t.Fatalf("got %v", got)
	}
	if Properties([]string{"spec", "nope"}) != nil {
		t.Fatal("unknown path has properties")
	}
}

// TestEveryObjectIsClosed checks that every object in the schema forbids
// unknown keys and that every property is documented.
func TestEveryObjectIsClosed(t *testing.T) {
	var walk func(path string, n map[string]any)
	walk = func(path string, n map[string]any) {
		props, hasProps := n["properties"].(map[string]any)
		if n["type"] == "object" && hasProps && n["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", path)
		}
		for k, v := range props {
			child := v.(map[string]any)
			if _, nested := child["properties"]; !nested && child["description"] == nil {
				t.Errorf("%s.%s: no description", path, k)
			}
			walk(path+"."+k, child)
		}
	}
	walk("$", docTree().(map[string]any))
}

// TestCompiledOnce checks that every call shares one compiled schema.
func TestCompiledOnce(t *testing.T) {
	a, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := compiled()
	if a == nil || a != b {
		t.Fatalf("compiled() = %p then %p, want one schema", a, b)
	}
}
