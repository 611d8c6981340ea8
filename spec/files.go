package spec

import (
	"path/filepath"
	"strings"
)

// IsSpecFile reports whether a directory entry named name is a spec: it ends
// in .yaml or .yml and is not a dotfile or an editor's or tool's backup.
// Editors save through temporary files next to the real one, so this filter
// is what keeps a half-written save from ever being read as a bottle.
func IsSpecFile(name string) bool {
	base := filepath.Base(name)
	switch {
	case base == "" || strings.HasPrefix(base, "."):
		return false // dotfiles, vim's .x.swp, emacs' .#x, ConfigMap ..data
	case base == "4913": // vim's probe for a writable directory
		return false
	case strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"): // emacs auto-save
		return false
	}
	for _, s := range []string{"~", ".swp", ".swx", ".bak", ".orig", ".tmp"} {
		if strings.HasSuffix(base, s) {
			return false
		}
	}
	return strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")
}
