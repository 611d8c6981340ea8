package guestio

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Pack writes src (a file, a symlink or a directory tree) to w as a tar
// stream whose top entry is called name, as docker cp lays one out: a
// directory's entries follow under name/. Symlinks are stored, not
// followed.
func Pack(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		entry := path.Join(name, filepath.ToSlash(rel))
		return packOne(tw, p, entry)
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", src, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("pack %s: %w", src, err)
	}
	return nil
}

func packOne(tw *tar.Writer, p, entry string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	if st.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(st, link)
	if err != nil {
		return err
	}
	hdr.Name = entry
	if st.IsDir() {
		hdr.Name += "/"
	}
	// Owners are the guest's business: files arrive as its root's.
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// Unpack extracts the tar stream r into dir. When rename is set, the
// stream's top entry (and so everything under it) is put in dir under that
// name instead of its own. Nothing is written outside dir, whatever the
// stream's names or symlinks say: an entry that would leave it is an error.
// Regular files, directories and symlinks are kept; other kinds (devices,
// fifos) are skipped.
func Unpack(r io.Reader, dir, rename string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	defer root.Close()
	tr := tar.NewReader(r)
	top := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack into %s: %w", dir, err)
		}
		name, err := entryName(hdr.Name, &top, rename)
		if err != nil {
			return fmt.Errorf("unpack into %s: %w", dir, err)
		}
		if err := unpackOne(root, tr, hdr, name); err != nil {
			return fmt.Errorf("unpack %s into %s: %w", name, dir, err)
		}
	}
}

// entryName cleans a tar entry's name and swaps its first element, which
// must be the same for every entry (top), for rename.
func entryName(raw string, top *string, rename string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(raw, "./"))
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
		return "", fmt.Errorf("entry %q leaves the target directory", raw)
	}
	first, rest, _ := strings.Cut(clean, "/")
	if *top == "" {
		*top = first
	} else if first != *top {
		return "", fmt.Errorf("entry %q is not under the copied %q", raw, *top)
	}
	if rename != "" {
		first = rename
	}
	return path.Join(first, rest), nil
}

func unpackOne(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string) error {
	mode := fs.FileMode(hdr.Mode).Perm() | fs.FileMode(hdr.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, 0o755); err != nil {
			return err
		}
		return root.Chmod(name, mode)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return root.Chmod(name, mode)
	case tar.TypeSymlink:
		_ = root.Remove(name)
		return root.Symlink(hdr.Linkname, name)
	}
	return nil
}
