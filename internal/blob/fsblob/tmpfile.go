package fsblob

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// errNoTmpfile means the filesystem cannot create unnamed files.
var errNoTmpfile = errors.New("O_TMPFILE not supported")

// openTmpfile creates an unnamed file in dir (O_TMPFILE). It needs no
// directory entry, so concurrent writes do not contend for dir's lock, and
// a crash leaves nothing behind: the filesystem frees an unlinked inode.
func openTmpfile(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, errNoTmpfile
		}
		return nil, fmt.Errorf("open unnamed file in %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
}

// linkTmpfile gives the unnamed file f the name final. It goes through
// /proc/self/fd, which unlike AT_EMPTY_PATH needs no privilege; like
// os.Link it fails with fs.ErrExist if final exists.
func linkTmpfile(f *os.File, final string) error {
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, final, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: src, New: final, Err: err}
	}
	return nil
}
