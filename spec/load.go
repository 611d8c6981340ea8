package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	yamlv3 "go.yaml.in/yaml/v3"
)

// MaxFileBytes is the largest spec file the loader reads. A bottle spec is a
// few hundred bytes; anything this big is a mistake, not a bottle.
const MaxFileBytes = 1 << 20

// DefaultPool is the range bottle subnets are allocated from unless the
// reconciler is told otherwise.
var DefaultPool = netip.MustParsePrefix("10.213.0.0/16")

// Options tunes the checks that depend on how the reconciler runs.
type Options struct {
	// Pool is the range bottle subnets are allocated from; allowCIDRs may not
	// reach into it. The zero value means DefaultPool.
	Pool netip.Prefix
	// Cache, when set, saves parsing files whose bytes did not change since
	// the last load through it.
	Cache *Cache
	// Verdicts, when set, saves a new process the full check of files it
	// has found valid before (see Verdicts).
	Verdicts *Verdicts
	// AllowSubnetOutsidePool accepts a spec.network.subnet outside Pool.
	// Off by default: bundles refuse only the pool, so a subnet outside it
	// is not kept from other bottles' egress gates.
	AllowSubnetOutsidePool bool
	// Offline skips what only the reconciler's host can tell (whether a
	// workspace's host path exists, is a directory, and where its symlinks
	// lead) and lists it in Result.Unchecked: for `validate` in CI. Without
	// it LoadDir and LoadFiles look those up on this host, on every load.
	Offline bool
	// StateDir is the reconciler's state directory, which no workspace may
	// be, be inside or hold.
	StateDir string
}

func (o Options) pool() netip.Prefix {
	if o.Pool.IsValid() {
		return o.Pool
	}
	return DefaultPool
}

// key spells every option a check depends on, for the cache and verdicts:
// a file valid under one setting may not be under another.
func (o Options) key() string {
	k := o.pool().String()
	if o.AllowSubnetOutsidePool {
		k += " subnet-outside-pool"
	}
	return k
}

// Result is what a directory (or a list of files) holds.
type Result struct {
	// Files lists every spec file read, in order.
	Files []string
	// Bottles are the valid bottles with unique names, sorted by name.
	Bottles []*Bottle
	// Problems lists everything wrong, sorted by file and position.
	Problems []Problem
	// Warnings lists what a reviewer should look at twice in the valid
	// bottles' files (such as a wildcard over a private-section public
	// suffix), sorted like Problems. They do not make a file invalid.
	Warnings []Problem
	// Held maps the name of each bottle whose file is invalid, or claimed by
	// more than one file, to the reason. Such a bottle must be left exactly as
	// it is: an invalid edit never means "destroy".
	Held map[string]string
	// Unattributed lists invalid files whose bottle name could not be read.
	// Any bottle might be the one they meant, so a reconciler must not prune
	// anything while this is not empty.
	Unattributed []string
	// Unchecked lists what an Offline load could not check, each located
	// like a problem; it does not make a file invalid.
	Unchecked []Problem
}

// OK reports whether every file was valid.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// LoadDir loads every spec file in dir, non-recursively, in sorted order. It
// returns an error only when the directory itself cannot be read; problems
// with single files are in the Result. A missing directory is an error, never
// "zero bottles".
func LoadDir(dir string, opts Options) (*Result, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spec: read directory %s: %w", dir, err)
	}
	var files []string
	for _, e := range entries {
		if !IsSpecFile(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			// Follow links (Kubernetes ConfigMap mounts are links into ..data),
			// but skip links to directories.
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				continue
			}
		} else if e.IsDir() {
			continue
		}
		files = append(files, p)
	}
	return LoadFiles(files, opts), nil
}

// LoadFiles loads the given spec files and checks that their names are
// unique across all of them.
func LoadFiles(files []string, opts Options) *Result {
	r := &Result{Held: map[string]string{}}
	// A file named twice (a directory and a file in it, or two spellings
	// of one path) is read once: it does not clash with itself.
	clean := make([]string, len(files))
	for i, f := range files {
		clean[i] = filepath.Clean(f)
	}
	sort.Strings(clean)
	files = slices.Compact(clean)
	// Every file that names a bottle claims it, valid or not, so a clash
	// is reported even while one of the files is still being fixed.
	type claim struct {
		file string
		doc  *yamlv3.Node
		b    *Bottle // nil for an invalid file
	}
	claims := map[string][]claim{}
	loaded := loadAll(files, opts)
	for i, f := range files {
		r.Files = append(r.Files, f)
		b, name, doc, problems := loaded[i].b, loaded[i].name, loaded[i].doc, loaded[i].problems
		r.Problems = append(r.Problems, problems...)
		switch {
		case b != nil:
			b.doc = doc
			claims[b.Metadata.Name] = append(claims[b.Metadata.Name], claim{f, doc, b})
		case name != "":
			r.Held[name] = fmt.Sprintf("%s is invalid", f)
			claims[name] = append(claims[name], claim{f, doc, nil})
		default:
			r.Unattributed = append(r.Unattributed, f)
		}
	}
	names := make([]string, 0, len(claims))
	for n := range claims {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cs := claims[n]
		if len(cs) > 1 {
			// Neither wins: the bottle is held as it is until one file is left.
			r.Held[n] = fmt.Sprintf("bottle %q is claimed by more than one file", n)
			var srcs []string
			for _, c := range cs {
				srcs = append(srcs, c.file)
			}
			for _, c := range cs {
				if c.doc == nil {
					c.doc = docOf(c.file)
				}
				line, col := locate(c.doc, path{"metadata", "name"}, false)
				r.Problems = append(r.Problems, Problem{
					File: c.file, Line: line, Column: col, Field: "metadata.name",
					Message: fmt.Sprintf("bottle %q is defined by more than one file (also %s); names must be unique, so none of them is applied: rename or remove all but one", n, joinOthers(srcs, c.file)),
				})
			}
			continue
		}
		if cs[0].b != nil {
			r.Bottles = append(r.Bottles, cs[0].b)
		}
	}
	r.Bottles = bottleOverlaps(r, r.Bottles)
	r.Bottles = checkHostWorkspaces(r, r.Bottles, opts)
	for _, b := range r.Bottles {
		r.Warnings = append(r.Warnings, b.warnings...)
	}
	sortProblems(r.Problems)
	sortProblems(r.Warnings)
	sortProblems(r.Unchecked)
	opts.Cache.sweep()
	return r
}

func joinOthers(all []string, self string) string {
	var others []string
	for _, s := range all {
		if s != self {
			others = append(others, s)
		}
	}
	return strings.Join(others, ", ")
}

// loadFile reads and checks one file. It returns the bottle when the file is
// valid; otherwise the problems and, when it could be read, the bottle's name.
// loadAll loads files on every core: parsing is most of a pass's own work
// when many files changed, or in a fresh process. Results keep the order
// of files.
func loadAll(files []string, opts Options) []parsed {
	out := make([]parsed, len(files))
	next := make(chan int, len(files))
	for i := range files {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Go(func() {
			for i := range next {
				p := &out[i]
				p.b, p.name, p.doc, p.problems = loadFile(files[i], opts)
			}
		})
	}
	wg.Wait()
	return out
}

func loadFile(file string, opts Options) (b *Bottle, name string, doc *yamlv3.Node, problems []Problem) {
	p := opts.Cache.load(file, opts, func() *parsed {
		data, err := readCapped(file)
		if err != nil {
			// The whole file is at fault: point at its start, so editors and
			// annotations still have a place to show it.
			return &parsed{problems: []Problem{{File: file, Line: 1, Column: 1, Message: err.Error()}}}
		}
		p := &parsed{}
		if opts.Verdicts != nil {
			p.verdict = verdictKey(data, opts.key())
			if name, ok := opts.Verdicts.lookup(p.verdict); ok {
				if b, ok := parseKnownValid(file, data, name, opts); ok {
					p.b, p.name = b, name
					return p
				}
			}
		}
		p.b, p.name, p.doc, p.problems = Parse(file, data, opts)
		if p.b != nil {
			opts.Verdicts.record(p.verdict, p.name)
		}
		return p
	})
	if p.b != nil && p.verdict != "" {
		opts.Verdicts.lookup(p.verdict) // still in use, though the cache answered
	}
	return p.b, p.name, p.doc, p.problems
}

// docOf parses file into nodes, for a position in a file whose verdict
// spared the parse; nil when it cannot.
func docOf(file string) *yamlv3.Node {
	data, err := readCapped(file)
	if err != nil {
		return nil
	}
	var doc yamlv3.Node
	if yamlv3.Unmarshal(data, &doc) != nil {
		return nil
	}
	return &doc
}

func readCapped(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %v", unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %v", unwrapPath(err))
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("file is larger than %d bytes; a bottle spec is small, so this is not one: move it out of the spec directory", MaxFileBytes)
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse checks one document: YAML syntax, the JSON Schema, then the semantic
// rules. file is only used to label problems. It never panics, whatever data
// holds.
func Parse(file string, data []byte, opts Options) (b *Bottle, name string, doc *yamlv3.Node, problems []Problem) {
	b, name, doc, problems = parse(file, data, opts)
	return b, name, doc, capProblems(problems)
}

// MaxProblemsPerFile bounds the problems reported for one file: past that,
// more lines help nobody, and the rest are summed up in one last problem.
const MaxProblemsPerFile = 100

func capProblems(ps []Problem) []Problem {
	if len(ps) <= MaxProblemsPerFile {
		return ps
	}
	more := ps[MaxProblemsPerFile]
	hidden := len(ps) - MaxProblemsPerFile
	ps = ps[:MaxProblemsPerFile:MaxProblemsPerFile]
	return append(ps, Problem{File: more.File, Line: more.Line, Column: more.Column,
		Message: fmt.Sprintf("%d more problems in this file are not shown; fix the ones above first", hidden)})
}

func parse(file string, data []byte, opts Options) (b *Bottle, name string, doc *yamlv3.Node, problems []Problem) {
	// The document is parsed as YAML twice, once into nodes (positions) and
	// once into JSON (schema and types); everything after works on those.
	doc, j, problems := parseYAML(file, data)
	if len(problems) > 0 {
		return nil, "", nil, problems
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, "", nil, []Problem{{File: file, Line: 1, Column: 1, Message: fmt.Sprintf("cannot decode the document: %v", err)}}
	}
	name = nameOf(v)
	loc := newLocator(doc)
	if ps := schemaProblems(file, loc, v); len(ps) > 0 {
		// Report the semantic problems too when the document still decodes,
		// so one run of validate shows everything to fix.
		var loose Bottle
		if json.Unmarshal(j, &loose) == nil {
			loose.Spec.applyDefaults()
			ps = append(ps, check(file, loc, &loose, opts)...)
			sortProblems(ps)
		}
		return nil, name, doc, ps
	}
	bottle, err := decodeStrict(file, j)
	if err != nil {
		// The schema accepted it, so this is a mismatch between schema and
		// types: report it rather than hide it.
		return nil, name, doc, []Problem{{File: file, Line: 1, Column: 1, Message: fmt.Sprintf("cannot decode the spec: %v", err)}}
	}
	if ps := check(file, loc, bottle, opts); len(ps) > 0 {
		return nil, name, doc, ps
	}
	return bottle, name, doc, nil
}

// decodeStrict decodes a document's JSON into a Bottle from file, every key
// known, with the defaults applied; the semantic checks are the caller's.
func decodeStrict(file string, j []byte) (*Bottle, error) {
	var b Bottle
	strict := json.NewDecoder(bytes.NewReader(j))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&b); err != nil {
		return nil, err
	}
	b.Source = file
	b.Spec.applyDefaults()
	return &b, nil
}

func nameOf(v any) string {
	m, _ := v.(map[string]any)
	md, _ := m["metadata"].(map[string]any)
	n, _ := md["name"].(string)
	if !validName(n) {
		return ""
	}
	return n
}
