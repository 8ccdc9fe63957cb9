package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/blobbatch"
)

// tmpPrefix starts the name of every temporary file the agent writes; a
// crash may leave some behind, which the periodic cleanup deletes.
const tmpPrefix = ".packyard-agent-"

// ErrDigestMismatch means bytes from the origin do not have the digest or
// size the generation's file list gives them: they are never written into
// the tree.
var ErrDigestMismatch = errors.New("digest mismatch")

// tmpFile is a verified file waiting to be put into place: an unnamed
// file (O_TMPFILE, Linux), open until it is linked at its destination, or
// a named temporary file beside the destination.
type tmpFile struct {
	name string   // the named temporary file, in the destination's directory
	f    *os.File // the unnamed file (name == "")
	dst  string
}

// createTemp creates a temporary file for dst: unnamed when the
// filesystem allows it and not too many are open (they hold a descriptor
// each until placed), else named, in dst's directory.
func createTemp(dst string) (*tmpFile, error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if f := openUnnamed(dir); f != nil {
		return &tmpFile{f: f, dst: dst}, nil
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	f, err := os.OpenFile(filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:])+".tmp"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &tmpFile{name: f.Name(), f: f, dst: dst}, nil
}

// writeVerified copies r into a temporary file for dst, checking that it
// is exactly size bytes with the sha256 digest. It does not sync it:
// syncTemps makes a whole batch durable before any of it is put into
// place (one syncfs instead of an fsync per file, which dominated a fresh
// edge's copy of a repository of small packages). On any error nothing is
// left behind.
func writeVerified(dst string, r io.Reader, digest string, size int64) (*tmpFile, error) {
	t, err := createTemp(dst)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(t.f, h), io.LimitReader(r, size+1))
	if err == nil && (n != size || hex.EncodeToString(h.Sum(nil)) != digest) {
		err = fmt.Errorf("%w: got %d bytes with sha256 %s, want %d bytes with sha256 %s", ErrDigestMismatch, n, hex.EncodeToString(h.Sum(nil)), size, digest)
	}
	if err == nil && t.name != "" {
		err = t.f.Close()
		t.f = nil
	}
	if err != nil {
		t.discard()
		return nil, err
	}
	return t, nil
}

// copyTemp makes another verified temporary file for dst with the bytes of
// an existing one.
func copyTemp(src *tmpFile, dst string, digest string, size int64) (*tmpFile, error) {
	if src.name == "" {
		return writeVerified(dst, io.NewSectionReader(src.f, 0, size+1), digest, size)
	}
	f, err := os.Open(src.name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return writeVerified(dst, f, digest, size)
}

// place puts a verified temporary file at its destination, atomically (a
// reader sees the old file or the new one), and returns its size and
// modification time: an unnamed file is linked there when the
// destination is new, else linked under a temporary name and renamed
// over it.
func (t *tmpFile) place() (int64, time.Time, error) {
	if t.name == "" {
		defer t.discard()
		err := linkUnnamed(t.f, t.dst)
		if errors.Is(err, fs.ErrExist) {
			var rnd [8]byte
			_, _ = rand.Read(rnd[:])
			tmp := filepath.Join(filepath.Dir(t.dst), tmpPrefix+hex.EncodeToString(rnd[:])+".tmp")
			if err = linkUnnamed(t.f, tmp); err == nil {
				if err = os.Rename(tmp, t.dst); err != nil {
					os.Remove(tmp)
				}
			}
		}
		if err != nil {
			return 0, time.Time{}, err
		}
	} else if err := os.Rename(t.name, t.dst); err != nil {
		os.Remove(t.name)
		return 0, time.Time{}, err
	}
	st, err := os.Stat(t.dst)
	if err != nil {
		return 0, time.Time{}, err
	}
	return st.Size(), st.ModTime(), nil
}

// discard drops a temporary file that is not (or no longer) needed.
func (t *tmpFile) discard() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
		if t.name == "" {
			unnamedClosed()
		}
	}
	if t.name != "" {
		os.Remove(t.name)
	}
}

// bumpMTime dates the temporary file at least one second after the file it
// replaces. Static servers send a pointer file's modification time as
// Last-Modified, in whole seconds, and pacman and apt revalidate with
// If-Modified-Since alone: a new repomd.xml, InRelease or NAME.db written
// within the same second as the old one would be answered 304.
func (t *tmpFile) bumpMTime(now time.Time) error {
	mt := now
	if old, err := os.Stat(t.dst); err == nil {
		if floor := old.ModTime().Truncate(time.Second).Add(time.Second); mt.Before(floor) {
			mt = floor
		}
	}
	if t.name == "" {
		return setMTime(t.f, mt)
	}
	return os.Chtimes(t.name, mt, mt)
}

// hashFile returns the hex sha256 of a file.
func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// syncDirs fsyncs the directories files were renamed into, so that the
// renames are durable, and every directory above them up to root_dir: a
// directory created for them is durable only once its parent is synced.
func (a *Agent) syncDirs(dirs map[string]bool) error {
	all := map[string]bool{}
	for d := range dirs {
		for p := d; within(a.root, p) && !all[p]; p = filepath.Dir(p) {
			all[p] = true
			if p == a.root {
				break
			}
		}
	}
	var errs []error
	for d := range all {
		if err := a.fsyncDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func fsyncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", d, err)
	}
	return nil
}

// fetchFile downloads one file of a generation from the origin (its blob,
// or its parts one after the other) into a verified temporary file beside
// dst, retrying transient failures with backoff.
func (a *Agent) fetchFile(ctx context.Context, f genFile, dst string) (*tmpFile, error) {
	if f.Data != nil || (f.Size == 0 && len(f.Parts) == 0) {
		return writeVerified(dst, bytes.NewReader(f.Data), f.Digest, f.Size)
	}
	var last error
	delay := 200 * time.Millisecond
	for attempt := 1; attempt <= 4; attempt++ {
		t, err := a.fetchOnce(ctx, f, dst)
		if err == nil {
			return t, nil
		}
		last = err
		if errors.Is(err, ErrDigestMismatch) {
			a.metrics.verifyFailures.Inc()
		}
		if ctx.Err() != nil || (permanent(err) && !errors.Is(err, ErrDigestMismatch)) {
			break
		}
		a.log.Warn("download failed, retrying", "path", f.Path, "digest", f.Digest, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
	return nil, fmt.Errorf("download %s (sha256 %s): %w", f.Path, f.Digest, last)
}

func (a *Agent) fetchOnce(ctx context.Context, f genFile, dst string) (*tmpFile, error) {
	parts := f.Parts
	if len(parts) == 0 {
		// One blob: the whole-file check is the blob's check.
		body, err := a.origin.blob(ctx, f.Digest)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		a.metrics.blobRequests.Inc()
		cr := &countReader{r: body}
		t, err := writeVerified(dst, cr, f.Digest, f.Size)
		a.metrics.bytes.Add(float64(cr.n))
		return t, err
	}
	pr, pw := io.Pipe()
	sizes := make([]int64, len(parts))
	go func() {
		for i, d := range parts {
			if !validDigest(d) {
				pw.CloseWithError(fmt.Errorf("%w: part %q is not a sha256 digest", ErrDigestMismatch, d))
				return
			}
			if b, ok := a.parts.read(d); ok {
				// Checked against its digest by read.
				sizes[i] = int64(len(b))
				a.metrics.partsReused.Inc()
				if _, err := pw.Write(b); err != nil {
					return
				}
				continue
			}
			body, err := a.origin.blob(ctx, d)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			a.metrics.blobRequests.Inc()
			// Each part is checked on its own too, so that a bad part is
			// named; the whole file is checked by writeVerified.
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(pw, h), io.LimitReader(body, f.Size+1))
			body.Close()
			a.metrics.bytes.Add(float64(n))
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != d {
				pw.CloseWithError(fmt.Errorf("%w: blob %s arrived with sha256 %s", ErrDigestMismatch, d, got))
				return
			}
			sizes[i] = n
		}
		pw.Close()
	}()
	t, err := writeVerified(dst, pr, f.Digest, f.Size)
	pr.CloseWithError(errors.New("download abandoned"))
	if err == nil {
		// The whole file checked out, so the sizes are those of its
		// parts; they will be found at dst once t is placed.
		a.parts.record(dst, parts, sizes)
	}
	return t, err
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func validDigest(d string) bool {
	if len(d) != 64 {
		return false
	}
	_, err := hex.DecodeString(d)
	return err == nil && d == string(bytes.ToLower([]byte(d)))
}

// Batches of small files (POST /api/v1/blobs): at most batchFiles files
// of at most batchFileMax bytes each, batchBytesMax in all.
const (
	batchFiles    = 256
	batchFileMax  = 1 << 20
	batchBytesMax = 32 << 20
)

// batchItem is one file of a batch.
type batchItem struct {
	f   genFile
	dst string
}

// batchable reports whether f may be fetched in a batch: one blob, small,
// and an origin that has not said it cannot.
func (a *Agent) batchable(f genFile) bool {
	return !a.noBatch.Load() && f.Data == nil && len(f.Parts) == 0 && f.Size > 0 && f.Size <= batchFileMax
}

// fetchBatch downloads the files of items in one request into verified
// temporary files. It returns one entry per item: nil for those it did
// not deliver (the batch failed at or before them, or the origin lacks
// the blob), which the caller fetches one by one; it never fails as a
// whole.
func (a *Agent) fetchBatch(ctx context.Context, items []batchItem) []*tmpFile {
	out := make([]*tmpFile, len(items))
	var req strings.Builder
	for _, it := range items {
		req.WriteString(it.f.Digest)
		req.WriteByte('\n')
	}
	resp, err := a.origin.openBlobs(ctx, req.String())
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusMethodNotAllowed) {
			// An origin without batches: one by one from now on.
			a.noBatch.Store(true)
		} else if ctx.Err() == nil {
			a.log.Warn("batch download failed, fetching its files one by one", "files", len(items), "err", err)
		}
		return out
	}
	defer resp.Close()
	a.metrics.blobRequests.Inc()
	br := bufio.NewReaderSize(resp, 64<<10)
	for i, it := range items {
		d, size, err := blobbatch.ReadHeader(br)
		if err != nil || d != it.f.Digest {
			a.log.Warn("batch download cut short or out of order, fetching the rest one by one", "want", it.f.Digest, "got", d, "err", err)
			return out
		}
		if size < 0 {
			continue // the origin lacks it: fetchFile says so
		}
		if size != it.f.Size {
			// Not what the list says: skipped (the header gives its
			// size), and fetched alone, which reports the mismatch.
			if _, err := io.CopyN(io.Discard, br, size); err != nil {
				return out
			}
			a.log.Warn("batch download: blob of another size than listed", "digest", d, "size", size, "listed", it.f.Size)
			a.metrics.verifyFailures.Inc()
			continue
		}
		cr := &countReader{r: io.LimitReader(br, size)}
		t, err := writeVerified(it.dst, cr, it.f.Digest, it.f.Size)
		a.metrics.bytes.Add(float64(cr.n))
		if err != nil {
			if errors.Is(err, ErrDigestMismatch) {
				a.metrics.verifyFailures.Inc()
			}
			a.log.Warn("batch download: file refused, fetching the rest one by one", "path", it.f.Path, "err", err)
			return out
		}
		out[i] = t
	}
	return out
}
