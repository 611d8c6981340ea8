package spec

import (
	"strconv"
	"strings"

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

// locator answers many locate queries on one document in constant time
// each: a file with thousands of unknown keys must not cost a walk of the
// whole document per problem. It is built on first use.
type locator struct {
	doc      *yamlv3.Node
	val, key map[string][2]int
}

func newLocator(doc *yamlv3.Node) *locator { return &locator{doc: doc} }

// locate is the package-level locate, from the index.
func (l *locator) locate(p path, key bool) (line, col int) {
	if l == nil || l.doc == nil {
		return 0, 0
	}
	if l.val == nil {
		l.build()
	}
	prefixes := make([]string, len(p)+1)
	var b strings.Builder
	for i, seg := range p {
		b.WriteString(segKey(seg))
		prefixes[i+1] = b.String()
	}
	if key && len(p) > 0 {
		if at, ok := l.key[prefixes[len(p)]]; ok {
			return at[0], at[1]
		}
	}
	for i := len(p); i >= 0; i-- {
		if at, ok := l.val[prefixes[i]]; ok {
			return at[0], at[1]
		}
	}
	return 0, 0
}

func segKey(seg any) string {
	switch s := seg.(type) {
	case int:
		return "\x01" + strconv.Itoa(s)
	case string:
		return "\x00" + s
	}
	return "\x02"
}

func (l *locator) build() {
	l.val, l.key = map[string][2]int{}, map[string][2]int{}
	root := l.doc
	if root.Kind == yamlv3.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	var walk func(n *yamlv3.Node, at string)
	walk = func(n *yamlv3.Node, at string) {
		l.val[at] = [2]int{n.Line, n.Column}
		switch n.Kind {
		case yamlv3.MappingNode:
			for j := 0; j+1 < len(n.Content); j += 2 {
				k := at + segKey(n.Content[j].Value)
				if _, dup := l.key[k]; dup {
					continue // the first wins, as in locate
				}
				l.key[k] = [2]int{n.Content[j].Line, n.Content[j].Column}
				walk(n.Content[j+1], k)
			}
		case yamlv3.SequenceNode:
			for j, c := range n.Content {
				walk(c, at+segKey(j))
			}
		}
	}
	walk(root, "")
}
