package spec

import (
	"strconv"

	yamlv3 "go.yaml.in/yaml/v3"
)

// locate returns the line and column of the node at p in a parsed YAML
// document. With key set it points at the key of the last segment instead of
// its value (for unknown fields). It falls back to the deepest node found, so
// a problem always points somewhere useful.
func locate(doc *yamlv3.Node, p path, key bool) (line, col int) {
	if doc == nil {
		return 0, 0
	}
	n := doc
	if n.Kind == yamlv3.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line, col = n.Line, n.Column
	for i, seg := range p {
		last := i == len(p)-1
		switch n.Kind {
		case yamlv3.MappingNode:
			name, ok := seg.(string)
			if !ok {
				return line, col
			}
			found := false
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == name {
					if last && key {
						return n.Content[j].Line, n.Content[j].Column
					}
					n = n.Content[j+1]
					found = true
					break
				}
			}
			if !found {
				return line, col
			}
		case yamlv3.SequenceNode:
			idx, ok := seg.(int)
			if !ok {
				if s, isStr := seg.(string); isStr {
					idx, _ = strconv.Atoi(s)
				}
			}
			if idx < 0 || idx >= len(n.Content) {
				return line, col
			}
			n = n.Content[idx]
		default:
			return line, col
		}
		line, col = n.Line, n.Column
	}
	return line, col
}
