package schema

import (
	"encoding/json"
	"sync"
)

// docTree is the schema decoded once as a plain tree, for Properties.
var docTree = sync.OnceValue(func() any {
	var v any
	if err := json.Unmarshal(JSON, &v); err != nil {
		panic("schema: embedded bottle.schema.json is not JSON: " + err.Error())
	}
	return v
})
