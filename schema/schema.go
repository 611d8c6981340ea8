// Package schema holds the JSON Schema of a bottle spec (draft 2020-12),
// embedded in the binary and compiled once.
package schema

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// JSON is the schema document, as printed by `bottle-reconcile schema`.
//
//go:embed bottle.schema.json
var JSON []byte

const url = "https://bottle-reconcile.dev/schema/v1alpha1/bottle.schema.json"

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource(url, strings.NewReader(string(JSON))); err != nil {
		return nil, fmt.Errorf("schema: add resource: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema: compile: %w", err)
	}
	return s, nil
})

// Validate checks v, a document decoded from JSON (maps, slices, strings,
// json.Number, bools, nil), against the bottle schema. A failure is a
// *jsonschema.ValidationError.
func Validate(v any) error {
	s, err := compiled()
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// Properties returns the property names the schema allows at the object
// found by following path (object keys, e.g. ["spec", "egress"]), for
// "did you mean" suggestions. It returns nil when path names no object.
func Properties(path []string) []string {
	doc := docTree()
	node, _ := doc.(map[string]any)
	for _, k := range path {
		props, _ := node["properties"].(map[string]any)
		next, ok := props[k].(map[string]any)
		if !ok {
			return nil
		}
		node = next
	}
	props, _ := node["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	return names
}
