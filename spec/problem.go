package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a spec file, located precisely enough for
// an editor or a pull-request annotation to point at it.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"` // e.g. spec.allowCIDRs[0]; empty for the whole file
	Message string `json:"message"`         // what is wrong and what to do
}

// String renders file:line:col: field: message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error makes a Problem usable as an error.
func (p Problem) Error() string { return p.String() }

// sortProblems orders problems by file, then position, then text, so output
// is stable whatever order the checks ran in.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.String() < b.String()
	})
}

// path is a location in a document: object keys and array indexes.
type path []any

func (p path) with(k any) path {
	q := make(path, len(p), len(p)+1)
	copy(q, p)
	return append(q, k)
}

// String renders the path the way users write fields: spec.allowCIDRs[0].
func (p path) String() string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		}
	}
	return b.String()
}
