package smolvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// sumSuffix names the file beside an archive that holds its sha256, which
// is how smolvm names an archive machine's image (`local:<sha256>` in
// `machine ls --json`): written at export, so pruning never rehashes
// gigabytes.
const sumSuffix = ".sha256"

var sumRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// export writes `docker save ID` to path through a temp file and a rename,
// so a reader never sees a partial archive under the final name, hashing it
// on the way. The sum is written before the archive is renamed into place,
// so an archive under its final name always has one. Saving by ID keeps the
// archive's content a function of its name.
func (d *Driver) export(ctx context.Context, id, path string) (source, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return source{}, err
	}
	rc, err := d.opts.Images.SaveImage(ctx, id)
	if err != nil {
		return source{}, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".export-*.tmp")
	if err != nil {
		return source{}, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return source{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := writeSum(path, sum); err != nil {
		return source{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return source{}, err
	}
	return source{ref: path, sum: sum, size: n}, nil
}

// archiveSum returns the sha256 of the archive at path from the file
// beside it. An archive exported before sums were kept is hashed once and
// its sum written.
func archiveSum(path string) (string, error) {
	b, err := os.ReadFile(path + sumSuffix)
	if s := strings.TrimSpace(string(b)); err == nil && sumRE.MatchString(s) {
		return s, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read archive sum: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return sum, writeSum(path, sum)
}

// writeSum writes sum beside the archive path, atomically.
func writeSum(path, sum string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".export-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(sum + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write archive sum: %w", err)
	}
	return os.Rename(tmp.Name(), path+sumSuffix)
}
