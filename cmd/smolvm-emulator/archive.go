package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Local images, as src/data/image_source.rs (a5df5001) resolves them at
// create: an existing directory is used in place and recorded as
// "local-dir:<canonical path>"; anything else local is an archive, hashed and
// hardlinked (or copied) to <cache>/smolvm-image-archives/<sha256>/archive.tar,
// and recorded as "local:<sha256>" (196-244, 303). start boots from that copy
// and never pulls.

const defaultMaxArchive = 8 << 30 // image_source.rs 146-153

// archiveCacheBase is dirs::cache_dir()/smolvm-image-archives, where
// SMOLVM_DATA_DIR (or HOME) is the home directory.
func (a *app) archiveCacheBase() string {
	return filepath.Join(a.home, ".cache", "smolvm-image-archives")
}

// maxArchiveBytes honours SMOLVM_MAX_IMAGE_BYTES as max_archive_bytes does.
func (a *app) maxArchiveBytes() int64 {
	if n, err := strconv.ParseInt(strings.TrimSpace(a.getenv("SMOLVM_MAX_IMAGE_BYTES")), 10, 64); err == nil && n > 0 {
		return n
	}
	return defaultMaxArchive
}

// stageArchive resolves a local --image and returns the reference to record.
func (a *app) stageArchive(img string) (string, error) {
	if img != "-" {
		if st, err := os.Stat(img); err == nil && st.IsDir() {
			abs, err := filepath.EvalSymlinks(img)
			if err != nil {
				return "", errorf("config operation failed: --image: cannot use rootfs directory %s: %v", img, err)
			}
			abs, _ = filepath.Abs(abs)
			return "local-dir:" + abs, nil
		}
	}
	base := a.archiveCacheBase()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("image archive cache: %w", err)
	}
	var (
		hash string
		err  error
	)
	if img == "-" {
		hash, err = a.stageStdin(base)
	} else {
		hash, err = a.stageFile(img, base)
	}
	if err != nil {
		return "", err
	}
	return "local:" + hash, nil
}

func (a *app) stageFile(path, base string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		// Rust's io::Error Display, e.g. "No such file or directory (os error 2)".
		return "", errorf("config operation failed: --image: cannot read archive %s: %s", path, rustIOError(err))
	}
	if !st.Mode().IsRegular() {
		return "", errorf("config operation failed: --image: %s is not a file", path)
	}
	if st.Size() > a.maxArchiveBytes() {
		return "", a.tooLarge(st.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return "", errorf("config operation failed: --image: cannot read archive %s: %s", path, rustIOError(err))
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash archive: %w", err)
	}
	return place(base, hex.EncodeToString(h.Sum(nil)), func(dst string) error {
		if os.Link(path, dst) == nil {
			return nil
		}
		return copyFile(path, dst)
	})
}

func (a *app) stageStdin(base string) (string, error) {
	tmp, err := os.CreateTemp(base, ".stdin-*")
	if err != nil {
		return "", fmt.Errorf("stage stdin archive: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	limit := a.maxArchiveBytes()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(a.stdin, limit+1))
	if err != nil {
		return "", fmt.Errorf("read image from stdin: %w", err)
	}
	if n > limit {
		return "", a.tooLarge(n)
	}
	return place(base, hex.EncodeToString(h.Sum(nil)), func(dst string) error { return os.Rename(tmp.Name(), dst) })
}

// place puts an archive at <base>/<hash>/archive.tar with put, unless one is
// already there: same hash, same content.
func place(base, hash string, put func(dst string) error) (string, error) {
	dst := filepath.Join(base, hash, "archive.tar")
	if _, err := os.Stat(dst); err == nil {
		return hash, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("stage archive: %w", err)
	}
	if err := put(dst); err != nil {
		return "", fmt.Errorf("stage archive: %w", err)
	}
	return hash, nil
}

func (a *app) tooLarge(n int64) error {
	return errorf("config operation failed: --image: image archive is %d bytes, over the %d-byte limit. Raise it with --max-image-size (e.g. --max-image-size 16GiB) or the SMOLVM_MAX_IMAGE_BYTES env var if this is a legitimate large image.", n, a.maxArchiveBytes())
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// rustIOError renders err like Rust's std::io::Error Display.
func rustIOError(err error) string {
	if os.IsNotExist(err) {
		return "No such file or directory (os error 2)"
	}
	if os.IsPermission(err) {
		return "Permission denied (os error 13)"
	}
	if errors.Is(err, syscall.EISDIR) {
		return "Is a directory (os error 21)"
	}
	return err.Error()
}
