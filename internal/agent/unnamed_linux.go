package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Unnamed temporary files (O_TMPFILE) need no directory entry while they
// are written, so concurrent downloads into one directory do not contend
// for its lock, and a crash leaves nothing behind. Each holds a descriptor
// until it is placed: at most maxUnnamed are open at once, named
// temporary files take over past it.
var (
	unnamedOpen atomic.Int64
	noUnnamed   atomic.Bool
)

// maxUnnamed bounds the unnamed files open at once: a quarter of the
// descriptor limit, at most 8192.
var maxUnnamed = func() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 256
	}
	return int64(min(rl.Cur/4, 8192))
}()

// openUnnamed opens an unnamed file in dir, or returns nil when it cannot
// (the filesystem does not support them, or too many are open).
func openUnnamed(dir string) *os.File {
	if noUnnamed.Load() {
		return nil
	}
	if unnamedOpen.Add(1) > maxUnnamed {
		unnamedOpen.Add(-1)
		return nil
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
	if err != nil {
		unnamedOpen.Add(-1)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			noUnnamed.Store(true)
		}
		return nil
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)"))
}

// unnamedClosed accounts for an unnamed file closed.
func unnamedClosed() { unnamedOpen.Add(-1) }

// linkUnnamed gives the unnamed file f the name dst (fs.ErrExist if dst
// exists). It goes through /proc/self/fd, which unlike AT_EMPTY_PATH needs
// no privilege.
func linkUnnamed(f *os.File, dst string) error {
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: src, New: dst, Err: err}
	}
	return nil
}

// setMTime sets an open file's access and modification times.
func setMTime(f *os.File, t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
}
