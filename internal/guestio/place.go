package guestio

import (
	"io"
	"os"
	"path"
	"path/filepath"
)

// Place says where a copy of something called base lands, as docker cp
// has it: inside dst, keeping base, when dst is an existing directory;
// otherwise in dst's parent under dst's own name. Paths are the guest's
// (slash-separated).
func Place(dst string, dstIsDir bool, base string) (dir, name string) {
	if dstIsDir {
		return dst, base
	}
	return path.Dir(path.Clean(dst)), path.Base(dst)
}

// UnpackTo extracts the tar stream r, whose top entry is the copied file
// or directory, to the local dst with Place's rule.
func UnpackTo(r io.Reader, dst string) error {
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return Unpack(r, dst, "")
	}
	return Unpack(r, filepath.Dir(filepath.Clean(dst)), filepath.Base(dst))
}
