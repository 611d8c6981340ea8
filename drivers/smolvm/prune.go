package smolvm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// inUse is what the listed machines use as their image: smolvm reports an
// archive machine's image as `local:<sha256 of the archive>` (sums), and
// older versions, or a registry or directory machine, as written (refs).
type inUse struct {
	sums map[string]bool
	refs map[string]bool
}

// imagesInUse collects the images of every listed machine, ours or not,
// since a cached archive may back any of them.
func imagesInUse(byName map[string]machine) inUse {
	u := inUse{sums: map[string]bool{}, refs: map[string]bool{}}
	for _, m := range byName {
		if m.Image == nil {
			continue
		}
		if sum, ok := strings.CutPrefix(*m.Image, "local:"); ok {
			u.sums[sum] = true
			continue
		}
		u.refs[*m.Image] = true
	}
	return u
}

// add marks src as in use.
func (u inUse) add(src source) {
	u.refs[src.ref] = true
	if src.sum != "" {
		u.sums[src.sum] = true
	}
}

// pruneCache removes cached archives (with their sums) that no machine uses
// and that were last used longer than CacheMaxAge ago. It runs after each
// create, from the listing Create already made, so it costs no extra smolvm
// call; the age floor keeps an archive that a create in flight is about to
// use. Failures are logged, never returned: a full cache must not fail a
// create.
//
// smolvm keeps its own hardlink or copy of every archive a machine was
// created from, under ~/.cache/smolvm-image-archives/<sha256>/, and boots
// from it; the driver never touches that cache (removing an entry would
// break the start of the machine made from it), so removing an archive here
// frees its blocks only once smolvm's link is gone too.
func (d *Driver) pruneCache(used inUse) {
	if d.opts.Images == nil || d.opts.CacheMaxAge < 0 {
		return
	}
	entries, err := os.ReadDir(d.opts.CacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Error(err, "list image archive cache", "dir", d.opts.CacheDir)
		return
	}
	cutoff := d.now().Add(-d.opts.CacheMaxAge)
	for _, e := range entries {
		name := e.Name()
		isArchive := strings.HasSuffix(name, ".tar")
		isTemp := strings.HasPrefix(name, ".export-") && strings.HasSuffix(name, ".tmp")
		// A sum whose archive is gone (a crash between the two renames).
		if tar, ok := strings.CutSuffix(name, sumSuffix); ok && strings.HasSuffix(tar, ".tar") {
			_, err := os.Stat(filepath.Join(d.opts.CacheDir, tar))
			isTemp = errors.Is(err, os.ErrNotExist)
		}
		if !isArchive && !isTemp {
			continue
		}
		path := filepath.Join(d.opts.CacheDir, name)
		if used.refs[path] {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if isArchive {
			sum, err := archiveSum(path)
			if err != nil {
				d.log.Error(err, "read image archive sum; keeping it", "archive", path)
				continue
			}
			if used.sums[sum] {
				continue
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Error(err, "remove unused image archive", "archive", path)
			continue
		}
		if isArchive {
			if err := os.Remove(path + sumSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.log.Error(err, "remove image archive sum", "archive", path)
			}
		}
		d.log.V(1).Info("removed unused image archive", "archive", path)
	}
}
