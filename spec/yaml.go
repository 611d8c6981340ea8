package spec

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// parseYAML parses data into a node tree for locating problems, and rejects
// what is not exactly one YAML mapping.
func parseYAML(file string, data []byte) (*yamlv3.Node, []byte, []Problem) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, []Problem{{File: file, Line: 1, Column: 1, Message: "file is empty; a bottle spec needs apiVersion, kind, metadata and spec"}}
	}
	// sigs.k8s.io/yaml reports the line of a syntax error more exactly than
	// yaml.v3 (which is off by one for some errors), so it speaks first.
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, nil, []Problem{yamlProblem(file, err)}
	}
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	var doc yamlv3.Node
	if err = dec.Decode(&doc); err != nil {
		return nil, nil, []Problem{yamlProblem(file, err)}
	}
	var extra yamlv3.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, nil, []Problem{yamlProblem(file, err)}
	default:
		return nil, nil, []Problem{{File: file, Line: extra.Line, Column: extra.Column, Message: "a second YAML document; put one bottle in each file"}}
	}
	root := &doc
	if root.Kind == yamlv3.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yamlv3.MappingNode {
		return nil, nil, []Problem{{File: file, Line: root.Line, Column: root.Column, Message: "a bottle spec must be a YAML mapping with apiVersion, kind, metadata and spec"}}
	}
	if p, ok := duplicateKey(file, root, nil); ok {
		return nil, nil, []Problem{p}
	}
	return &doc, j, nil
}

// duplicateKey finds a key given twice in one mapping: YAML parsers disagree
// on which one wins, so a reviewer could approve one value and get the other.
func duplicateKey(file string, n *yamlv3.Node, at path) (Problem, bool) {
	switch n.Kind {
	case yamlv3.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if seen[k.Value] {
				return Problem{File: file, Line: k.Line, Column: k.Column, Field: at.with(k.Value).String(), Message: "key appears twice in the same mapping; keep one"}, true
			}
			seen[k.Value] = true
			if p, ok := duplicateKey(file, n.Content[i+1], at.with(k.Value)); ok {
				return p, true
			}
		}
	case yamlv3.SequenceNode:
		for i, c := range n.Content {
			if p, ok := duplicateKey(file, c, at.with(i)); ok {
				return p, true
			}
		}
	}
	return Problem{}, false
}

var yamlLine = regexp.MustCompile(`line (\d+)(?::(\d+))?`)

// yamlProblem turns a YAML library error into a problem at its line.
func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	p := Problem{File: file, Message: "YAML syntax error: " + strings.TrimPrefix(strings.TrimPrefix(msg, "yaml: "), "error converting YAML to JSON: yaml: ")}
	if strings.Contains(msg, "unsupported map key") {
		// The library's own text here is a broken format string.
		p.Message = "YAML syntax error: a mapping key is empty or not plain text; write every key as text"
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			p.Column, _ = strconv.Atoi(m[2])
		}
	}
	if p.Line == 0 {
		p.Line = 1
	}
	return p
}
