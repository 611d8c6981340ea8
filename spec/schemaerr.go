package spec

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/bottle-reconcile/bottle-reconcile/schema"
)

// schemaProblems validates v against the JSON Schema and turns each failure
// into a problem that names the field and says what to do.
func schemaProblems(file string, loc *locator, v any) []Problem {
	err := schema.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{File: file, Line: 1, Column: 1, Message: err.Error()}}
	}
	var out []Problem
	seen := map[string]bool{}
	root := docValue(loc.doc)
	for _, leaf := range leaves(ve) {
		for _, p := range translate(file, loc, root, leaf) {
			if k := p.String(); !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	sortProblems(out)
	return out
}

func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// pointerPath turns a JSON pointer (/spec/allowCIDRs/0) into a path, using
// the document to tell array indexes from keys that look like numbers.
func pointerPath(ptr string, v any) path {
	var p path
	if ptr == "" || ptr == "/" {
		return p
	}
	for _, raw := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		seg := strings.ReplaceAll(strings.ReplaceAll(raw, "~1", "/"), "~0", "~")
		if arr, ok := v.([]any); ok {
			if i, err := strconv.Atoi(seg); err == nil && i < len(arr) {
				p = append(p, i)
				v = arr[i]
				continue
			}
		}
		p = append(p, seg)
		if m, ok := v.(map[string]any); ok {
			v = m[seg]
		} else {
			v = nil
		}
	}
	return p
}

var quoted = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'`)

func translate(file string, loc *locator, root any, ve *jsonschema.ValidationError) []Problem {
	p := pointerPath(ve.InstanceLocation, root)
	kw := ve.KeywordLocation[strings.LastIndexByte(ve.KeywordLocation, '/')+1:]
	at := func(q path, key bool, msg string) Problem {
		line, col := loc.locate(q, key)
		return Problem{File: file, Line: line, Column: col, Field: q.String(), Message: msg}
	}
	switch kw {
	case "additionalProperties":
		var out []Problem
		for _, m := range quoted.FindAllStringSubmatch(ve.Message, -1) {
			out = append(out, at(p.with(m[1]), true, unknownField(p, m[1])))
		}
		return out
	case "required":
		var out []Problem
		for _, m := range quoted.FindAllStringSubmatch(ve.Message, -1) {
			out = append(out, at(p, false, fmt.Sprintf("missing required field %q; add it", m[1])))
		}
		return out
	}
	if strings.Contains(ve.KeywordLocation, "/propertyNames") {
		return []Problem{at(p, true, "is not a valid environment variable name; use letters, digits and '_', not starting with a digit")}
	}
	return []Problem{at(p, false, friendly(p.String(), kw, ve.Message))}
}

// friendly rewrites the schema library's message for the fields users get
// wrong most, and keeps the library's words for the rest.
func friendly(field, kw, msg string) string {
	switch {
	case field == "apiVersion":
		return fmt.Sprintf("must be %s", APIVersion)
	case field == "kind":
		return fmt.Sprintf("must be %s", Kind)
	case field == "metadata.name" && kw == "pattern":
		return "must be a lowercase DNS label: a-z, 0-9 and '-', starting and ending with a letter or digit"
	case field == "metadata.name" && kw == "not":
		return `must not contain "--"`
	case field == "metadata.name" && kw == "maxLength":
		return "is longer than 40 characters; shorten it"
	case field == "metadata.name" && kw == "minLength":
		return "is empty; give the bottle a name"
	case field == "spec.guest":
		return "must be smolvm or docker"
	case field == "spec.pullPolicy":
		return "must be missing, always or never"
	case strings.HasPrefix(field, "spec.daemons[") && kw == "enum":
		return "must be egress or dns"
	case field == "spec.image" && kw == "pattern":
		return "must not contain whitespace"
	case kw == "pattern" && strings.HasPrefix(field, "spec.envFromHost["):
		return "is not a valid environment variable name; use letters, digits and '_', not starting with a digit"
	case strings.HasPrefix(field, "spec.workspace.") && kw == "pattern":
		return "must be an absolute path without ':' (smolvm's -v separator); write it from /, like /srv/bottles/alice/work"
	case strings.HasPrefix(field, "spec.workspace.") && kw == "not":
		return "must not be / (the whole filesystem); name a directory below it"
	case kw == "type" && strings.HasSuffix(msg, "but got boolean"):
		return msg + "; YAML reads yes/no/on/off/y/n as booleans: quote the value"
	case kw == "type" && strings.HasSuffix(msg, "but got number") && strings.Contains(msg, "expected string"):
		return msg + "; quote the value"
	case kw == "uniqueItems":
		return "lists the same value twice (" + msg + "); keep one"
	}
	return msg
}

// unknownField explains an unknown key and suggests the closest known one.
func unknownField(parent path, name string) string {
	var keys []string
	for _, s := range parent {
		k, ok := s.(string)
		if !ok {
			return "unknown field; remove it"
		}
		keys = append(keys, k)
	}
	known := schema.Properties(keys)
	sort.Strings(known)
	if s := closest(name, known); s != "" {
		return fmt.Sprintf("unknown field; did you mean %s?", s)
	}
	if len(known) == 0 {
		return "unknown field; remove it"
	}
	return fmt.Sprintf("unknown field; allowed fields are %s", strings.Join(known, ", "))
}

// closest returns the known name nearest to name, if it is near enough to be
// a typo: the same letters in another case, or at most two edits away.
func closest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// docValue rebuilds a plain value tree from the YAML nodes, only to tell
// array indexes from keys when mapping JSON pointers back to the file.
func docValue(n *yamlv3.Node) any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yamlv3.DocumentNode:
		if len(n.Content) > 0 {
			return docValue(n.Content[0])
		}
	case yamlv3.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = docValue(n.Content[i+1])
		}
		return m
	case yamlv3.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = docValue(c)
		}
		return s
	}
	return n.Value
}
