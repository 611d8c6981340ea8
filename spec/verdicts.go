package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/bottle-reconcile/bottle-reconcile/internal/atomicfile"
)

// Verdicts remember, across processes, which file contents a full check
// found valid, so that a new process (every `--once` run) does not check
// unchanged specs from scratch. A verdict is keyed by the SHA-256 of the
// file's bytes and the options the check ran with (Options.key), and it holds only
// the bottle's name: no spec content, so no env value, is written to disk.
// A file with a verdict is still read and decoded each load; only the YAML
// node tree, the JSON Schema and the problem positions are skipped, and the
// semantic checks (which also normalise) run as always.
//
// Verdicts are only as good as the code that gave them, so the store is
// tied to the executable that wrote it: another build starts empty.
type Verdicts struct {
	path  string
	build string

	mu    sync.Mutex
	known map[string]string // content key -> bottle name
	used  map[string]bool
	dirty bool
}

// verdictsFormat changes when the meaning of a verdict does.
const verdictsFormat = "bottle-reconcile spec verdicts v1"

type verdictsFile struct {
	Format string            `json:"format"`
	Build  string            `json:"build"`
	Valid  map[string]string `json:"valid"`
}

// OpenVerdicts reads the verdicts stored at path. A missing, unreadable or
// foreign file gives an empty store: verdicts only ever save work.
func OpenVerdicts(path string) *Verdicts {
	v := &Verdicts{path: path, build: buildID(), known: map[string]string{}, used: map[string]bool{}}
	b, err := os.ReadFile(path)
	if err != nil {
		return v
	}
	var f verdictsFile
	if json.Unmarshal(b, &f) != nil || f.Format != verdictsFormat || f.Build != v.build || v.build == "" {
		v.dirty = true // rewrite it for this build
		return v
	}
	for k, name := range f.Valid {
		if validName(name) {
			v.known[k] = name
		}
	}
	return v
}

// buildID identifies the running executable by what stat says of it; a
// rebuilt or replaced binary gets another one. Empty when it cannot be
// told, and then nothing is remembered.
func buildID() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s %d %d", exe, fi.Size(), fi.ModTime().UnixNano())
}

func verdictKey(data []byte, opts string) string {
	h := sha256.New()
	h.Write(data)
	h.Write([]byte{0})
	h.Write([]byte(opts))
	return hex.EncodeToString(h.Sum(nil))
}

// lookup reports whether data was found valid under its options, and the name
// of its bottle.
func (v *Verdicts) lookup(key string) (string, bool) {
	if v == nil {
		return "", false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	name, ok := v.known[key]
	if ok {
		v.used[key] = true
	}
	return name, ok
}

func (v *Verdicts) record(key, name string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.used[key] = true
	if v.known[key] != name {
		v.known[key], v.dirty = name, true
	}
}

// Save keeps the verdicts the last load used, dropping the rest, and
// writes them if anything changed. It is safe to skip: a store that is
// not saved only costs the next process a full check.
func (v *Verdicts) Save() error {
	if v == nil || v.build == "" {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for k := range v.known {
		if !v.used[k] {
			delete(v.known, k)
			v.dirty = true
		}
	}
	v.used = map[string]bool{}
	if !v.dirty {
		return nil
	}
	b, err := json.Marshal(verdictsFile{Format: verdictsFormat, Build: v.build, Valid: v.known})
	if err != nil {
		return fmt.Errorf("spec: encode verdicts: %w", err)
	}
	if err := atomicfile.Write(v.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("spec: save verdicts: %w", err)
	}
	v.dirty = false
	return nil
}

// parseKnownValid decodes data that a full check found valid: the schema
// and the node tree are skipped, the semantic checks (which normalise) are
// not. It reports false when anything differs from what the verdict said,
// and the caller checks the file in full.
func parseKnownValid(file string, data []byte, name string, opts Options) (*Bottle, bool) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, false
	}
	b, err := decodeStrict(file, j)
	// A file with warnings is checked in full, which locates them.
	if err != nil || b.Metadata.Name != name || len(check(file, nil, b, opts)) > 0 || len(b.warnings) > 0 {
		return nil, false
	}
	return b, true
}
