// Package fsblob is the filesystem backend of blob.Store.
//
// A store owns one directory, laid out as follows:
//
//	<dir>/
//	├── sha256/                      committed blobs, mode 0444, never rewritten
//	│   └── <ab>/                    first two hex characters of the digest
//	│       └── <abcd…full hex>      the blob's bytes
//	└── tmp/                         writes in progress (os.CreateTemp names)
//
// One level of 256 shards: a second level would mean a new directory (a
// mkdir and two directory fsyncs, about a millisecond here) for nearly
// every blob of the first 65,536, and ext4 indexes large directories.
//
// A write goes to a file in tmp/ that is hashed and counted as it grows. On
// Commit the file is fsynced and hard-linked under its digest; os.Link fails
// rather than replace an existing name, so a blob is never overwritten, even by
// a concurrent commit of the same bytes. The temporary name is then removed.
//
// Shard directories are never removed, because a concurrent Commit may be
// about to link into one. Open removes whatever a crashed process left in
// tmp/, so one directory must be used by one process at a time. The
// filesystem must support hard links.
package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/internal/blob"
)

const (
	blobsDir = "sha256"
	tempDir  = "tmp"
	// blobMode is the mode of committed blobs: they are immutable.
	blobMode = 0o444
	dirMode  = 0o755
)

// Store is a blob.Store that keeps blobs as files in a directory.
// It is safe for concurrent use.
type Store struct {
	blobs string // <dir>/sha256
	tmp   string // <dir>/tmp

	// durable holds the shard directories whose entries in their parents
	// this process has fsynced, so a Commit fsyncs each parent once.
	durable sync.Map // string → struct{}
	// lazyDirs holds the shard directories a lazy commit created (or met)
	// without fsyncing their parent: the next Sync makes them durable.
	lazyDirs sync.Map // string → struct{}

	// synced remembers blobs this process committed or found and made
	// durable (file and directory entry fsynced), so that storing them
	// again costs a stat instead of a temporary file and an fsync: each
	// publish stores the same public keys and signatures again.
	syncedMu sync.Mutex
	synced   map[blob.Digest]struct{}

	// lazy holds the blobs committed without a flush (CommitLazy).
	lazy lazySet

	// noTmpfile is set once the filesystem refused O_TMPFILE; writes then
	// go to named temporary files.
	noTmpfile atomic.Bool
}

// maxSynced bounds Store.synced; it is emptied when full.
const maxSynced = 4096

func (s *Store) isSynced(d blob.Digest) bool {
	s.syncedMu.Lock()
	defer s.syncedMu.Unlock()
	_, ok := s.synced[d]
	return ok
}

func (s *Store) markSynced(d blob.Digest) {
	s.syncedMu.Lock()
	defer s.syncedMu.Unlock()
	if s.synced == nil || len(s.synced) >= maxSynced {
		s.synced = make(map[blob.Digest]struct{})
	}
	s.synced[d] = struct{}{}
}

func (s *Store) forgetSynced(d blob.Digest) {
	s.syncedMu.Lock()
	defer s.syncedMu.Unlock()
	delete(s.synced, d)
}

// touch refreshes the modification time of a blob stored again, so that
// garbage collection, which spares young blobs, does not delete a blob
// that was unreferenced for long and is about to be named again. It
// returns the blob's Info.
func (s *Store) touch(d blob.Digest, fi os.FileInfo) blob.Info {
	now := time.Now()
	if now.Sub(fi.ModTime()) < time.Minute {
		return info(d, fi)
	}
	if err := os.Chtimes(s.path(d), now, now); err == nil {
		if fi2, err := os.Stat(s.path(d)); err == nil {
			return info(d, fi2)
		}
	}
	return info(d, fi)
}

// Put stores b. A blob this process already made durable is only checked
// with a stat; anything else goes through a temporary file as Create does.
func (s *Store) Put(ctx context.Context, b []byte) (blob.Info, error) {
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	d := blob.DigestOf(b)
	if s.isSynced(d) {
		if fi, err := os.Stat(s.path(d)); err == nil && fi.Size() == int64(len(b)) {
			return s.touch(d, fi), nil
		}
		s.forgetSynced(d)
	}
	return blob.WritePut(ctx, s, b)
}

var _ blob.Store = (*Store)(nil)

// Open opens the store in dir, creating the directory and its layout if
// needed, and removes temporary files left in tmp/ by a process that stopped
// without committing or cancelling them.
func Open(dir string) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("fsblob: create store directory: %w", err)
	}
	s := &Store{
		blobs: filepath.Join(dir, blobsDir),
		tmp:   filepath.Join(dir, tempDir),
	}
	for _, d := range []string{s.blobs, s.tmp} {
		if err := mkdirSync(d); err != nil {
			return nil, fmt.Errorf("fsblob: %w", err)
		}
	}
	if err := s.removeStaleTemps(); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	return s, nil
}

// removeStaleTemps empties tmp/. Nothing there can be in use yet, since the
// store owns the directory and has not handed out a Writer.
func (s *Store) removeStaleTemps() error {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("remove stale temporary files: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return fmt.Errorf("remove stale temporary file: %w", err)
		}
	}
	return nil
}

// Path returns the name of the file that holds the blob d, whether or not it
// exists, so that it can be served with sendfile. It returns "" if d is not
// a valid digest.
func (s *Store) Path(d blob.Digest) string {
	if _, err := blob.ParseDigest(string(d)); err != nil {
		return ""
	}
	return s.path(d)
}

// path is Path for a digest already validated.
func (s *Store) path(d blob.Digest) string {
	return filepath.Join(s.shardDir(d), string(d))
}

// shardDir returns <dir>/sha256/<ab> for a validated digest.
func (s *Store) shardDir(d blob.Digest) string {
	return filepath.Join(s.blobs, string(d[0:2]))
}

// TempCount returns the number of files in tmp/: the writes in progress, plus
// anything a failed Commit or Cancel could not remove. Tests use it to check
// that nothing is left behind.
func (s *Store) TempCount() (int, error) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return 0, fmt.Errorf("fsblob: count temporary files: %w", err)
	}
	return len(entries), nil
}

// Create starts a new blob whose bytes go to a temporary file until Commit.
func (s *Store) Create(ctx context.Context, limit int64) (blob.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("fsblob: create blob: negative size limit %d", limit)
	}
	if !s.noTmpfile.Load() {
		f, err := openTmpfile(s.tmp)
		if err == nil {
			return newWriter(s, f, false, limit), nil
		}
		if !errors.Is(err, errNoTmpfile) {
			return nil, fmt.Errorf("fsblob: create blob: %w", err)
		}
		s.noTmpfile.Store(true)
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return nil, fmt.Errorf("fsblob: create blob: %w", err)
	}
	return newWriter(s, f, true, limit), nil
}

// Open returns the blob's file, which the caller must close.
func (s *Store) Open(ctx context.Context, d blob.Digest) (blob.Reader, error) {
	if err := s.check(ctx, d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(d))
	if err != nil {
		return nil, notFound(d, "open", err)
	}
	return f, nil
}

// Stat returns the blob's size and the time it was written.
func (s *Store) Stat(ctx context.Context, d blob.Digest) (blob.Info, error) {
	if err := s.check(ctx, d); err != nil {
		return blob.Info{}, err
	}
	fi, err := os.Stat(s.path(d))
	if err != nil {
		return blob.Info{}, notFound(d, "stat", err)
	}
	return info(d, fi), nil
}

// Delete removes the blob. The shard directories stay.
func (s *Store) Delete(ctx context.Context, d blob.Digest) error {
	if err := s.check(ctx, d); err != nil {
		return err
	}
	s.forgetSynced(d)
	if err := os.Remove(s.path(d)); err != nil {
		return notFound(d, "delete", err)
	}
	return nil
}

// Walk calls fn for every committed blob, shard by shard. It skips any file
// or directory whose name does not fit the layout, and blobs deleted while it
// runs. It returns fn's error unwrapped.
func (s *Store) Walk(ctx context.Context, fn func(blob.Info) error) error {
	tops, err := readDirs(s.blobs)
	if err != nil {
		return fmt.Errorf("fsblob: walk: %w", err)
	}
	for _, ab := range tops {
		if !isHexPair(ab) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.walkShard(ab, fn); err != nil {
			return err
		}
	}
	return nil
}

// walkShard calls fn for the blobs in <dir>/sha256/<ab>.
func (s *Store) walkShard(ab string, fn func(blob.Info) error) error {
	entries, err := os.ReadDir(filepath.Join(s.blobs, ab))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fsblob: walk: %w", err)
	}
	for _, e := range entries {
		d, err := blob.ParseDigest(e.Name())
		if err != nil || string(d[0:2]) != ab || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("fsblob: walk: blob %s: %w", d, err)
		}
		if err := fn(info(d, fi)); err != nil {
			return err
		}
	}
	return nil
}

// Close does nothing: the store holds no open files.
func (s *Store) Close() error { return nil }

// check returns ctx's error or the error for an invalid digest. Every lookup
// validates the digest first, since it becomes a path.
func (s *Store) check(ctx context.Context, d blob.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := blob.ParseDigest(string(d)); err != nil {
		return fmt.Errorf("fsblob: %w", err)
	}
	return nil
}

// readDirs returns the names of the directories in dir; a missing dir has
// none.
func readDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// isHexPair reports whether name is a shard directory name.
func isHexPair(name string) bool {
	if len(name) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func info(d blob.Digest, fi fs.FileInfo) blob.Info {
	return blob.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}
}

// notFound wraps err, turning fs.ErrNotExist into blob.ErrNotFound.
func notFound(d blob.Digest, op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: %s blob %s: %w", op, d, blob.ErrNotFound)
	}
	return fmt.Errorf("fsblob: %s blob %s: %w", op, d, err)
}

// mkdirShard creates the shard directory of d if needed and makes its
// entry durable. A directory that already exists is synced too, the first
// time this process sees it: it may have been created by a concurrent Commit
// that has not synced it yet, or by a process that crashed before syncing.
// For a lazy commit the parent is not fsynced: the store's next Sync, which
// makes the blob durable, makes the directory's entry durable with it.
func (s *Store) mkdirShard(d blob.Digest, lazy bool) error {
	dir := s.shardDir(d)
	if _, ok := s.durable.Load(dir); ok {
		return nil
	}
	if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if lazy {
		s.lazyDirs.Store(dir, struct{}{})
		return nil
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	s.durable.Store(dir, struct{}{})
	return nil
}

// mkdirSync creates dir if it is missing, and then fsyncs its parent so that
// the new entry survives a crash. The parent must exist.
func mkdirSync(dir string) error {
	err := os.Mkdir(dir, dirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir fsyncs a directory, making the creation or removal of its entries
// durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
