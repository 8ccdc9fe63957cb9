package mirror

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
)

// errMissing means no upstream has the file (404 or 410 from every one).
var errMissing = errors.New("not found upstream")

// retries is how many times one upstream is asked for a file before the
// next is tried, with backoff between attempts.
const retries = 3

// fileURL joins an upstream base and a path relative to the repository.
// A pacman base may name $arch (and $repo): the path's first segment is
// the architecture, and the rest is appended to the substituted base.
func (s *syncer) fileURL(base, rel string) string {
	base = strings.TrimSuffix(base, "/")
	if strings.Contains(base, "$arch") {
		arch, rest, _ := strings.Cut(rel, "/")
		base = strings.ReplaceAll(strings.ReplaceAll(base, "$arch", arch), "$repo", s.dbName)
		rel = rest
	}
	return base + "/" + rel
}

// get asks each upstream in turn for rel, retrying an upstream on errors
// and server errors with backoff, and calls fn with the first successful
// response's body. fn's errors are final for that upstream: the next one
// is tried, and the errors are joined if none succeeds. A 404 from every
// upstream is errMissing.
func (s *syncer) get(ctx context.Context, rel string, fn func(src string, body io.Reader) error) error {
	var errs []error
	missing := 0
	for _, base := range s.bases {
		u := s.fileURL(base, rel)
		backoff := s.m.opts.Backoff
		for attempt := 1; ; attempt++ {
			err, final := s.try(ctx, u, fn)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errMissing) {
				missing++
				break
			}
			if final || attempt >= retries {
				errs = append(errs, err)
				break
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff *= 2
		}
	}
	if missing == len(s.bases) {
		return fmt.Errorf("%s: %w (asked %s)", rel, errMissing, strings.Join(s.bases, ", "))
	}
	return errors.Join(errs...)
}

// try makes one request; final says that retrying the same upstream is
// pointless (the bytes were wrong, not the connection).
func (s *syncer) try(ctx context.Context, u string, fn func(src string, body io.Reader) error) (error, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", u, err), true
	}
	req.Header.Set("User-Agent", "packyard-mirror")
	resp, err := s.m.opts.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err), false
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return errMissing, true
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("GET %s: %s", u, resp.Status), false
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", u, resp.Status), true
	}
	if err := fn(u, resp.Body); err != nil {
		var fe *finalError
		if errors.As(err, &fe) {
			return fe.err, true
		}
		return fmt.Errorf("GET %s: %w", u, err), false
	}
	return nil, false
}

// finalError marks an error of fn that retrying cannot fix (bytes that
// do not match the signed metadata).
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }

// fetchSmall returns a pointer file (repomd.xml, InRelease, NAME.db.sig),
// at most limit bytes, and the URL it came from.
func (s *syncer) fetchSmall(ctx context.Context, rel string, limit int64) ([]byte, string, error) {
	var out []byte
	var from string
	err := s.get(ctx, rel, func(src string, body io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(body, limit+1))
		if err != nil {
			return err
		}
		if int64(len(b)) > limit {
			return &finalError{fmt.Errorf("%s is larger than %d bytes", src, limit)}
		}
		out, from = b, src
		return nil
	})
	return out, from, err
}

// fetchBlob downloads rel into the blob store unless a blob with its
// digest is there already, refusing bytes whose size or sha256 differ
// from what the signed metadata says. It returns the bytes downloaded
// (0 when the blob was stored).
//
// With dg, the bytes stored are also hashed into dg (reset before each
// attempt), for a format.StoredParser.
func (s *syncer) fetchBlob(ctx context.Context, rel, sha string, size int64, dg *digester) (int64, error) {
	if _, err := s.m.opts.Blobs.Stat(ctx, blob.Digest(sha)); err == nil {
		return 0, nil
	} else if !errors.Is(err, blob.ErrNotFound) {
		return 0, fmt.Errorf("look up %s in the blob store: %w", rel, err)
	}
	var got int64
	err := s.get(ctx, rel, func(src string, body io.Reader) error {
		limit := s.m.opts.MaxFileSize
		if size >= 0 {
			limit = size
		}
		w, err := s.m.opts.Blobs.Create(ctx, limit)
		if err != nil {
			return &finalError{fmt.Errorf("store %s: %w", rel, err)}
		}
		var in io.Reader = &counting{r: body, n: &s.prog.Bytes}
		if dg != nil {
			dg.reset()
			in = io.TeeReader(in, dg)
		}
		buf := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(w, in, *buf)
		copyBufs.Put(buf)
		if err != nil {
			_ = w.Cancel(context.WithoutCancel(ctx))
			if errors.Is(err, blob.ErrTooLarge) {
				return &finalError{fmt.Errorf("%s is larger than the %d bytes the signed metadata gives it: refused", src, limit)}
			}
			return err
		}
		if size >= 0 && n != size {
			_ = w.Cancel(context.WithoutCancel(ctx))
			return &finalError{fmt.Errorf("%s has %d bytes, the signed metadata says %d: refused", src, n, size)}
		}
		if _, err := s.commit(ctx, w, blob.Digest(sha)); err != nil {
			if errors.Is(err, blob.ErrDigestMismatch) {
				return &finalError{fmt.Errorf("%s has sha256 %s, the signed metadata says %s: refused", src, w.Digest(), sha)}
			}
			return &finalError{fmt.Errorf("store %s: %w", rel, err)}
		}
		got = n
		return nil
	})
	return got, err
}

// commit commits a downloaded blob lazily when the store can (a sync
// flushes its blobs in batches: flush before recording them), durably
// otherwise.
func (s *syncer) commit(ctx context.Context, w blob.Writer, want blob.Digest) (blob.Info, error) {
	if lc, ok := w.(blob.LazyCommitter); ok && s.flusher != nil {
		return lc.CommitLazy(ctx, want)
	}
	return w.Commit(ctx, want)
}

// flush makes the blobs this sync committed lazily durable.
func (s *syncer) flush(ctx context.Context) error {
	if s.flusher == nil {
		return nil
	}
	return s.flusher.Sync(ctx)
}

// copyBufs are the buffers downloads are copied through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// digester computes, besides the SHA-256 the blob store computes, the
// digests a format.StoredParser takes.
type digester struct {
	md5 hash.Hash
}

func newDigester() *digester {
	return &digester{md5: md5.New()}
}

func (d *digester) Write(p []byte) (int, error) {
	d.md5.Write(p)
	return len(p), nil
}

func (d *digester) reset() {
	d.md5.Reset()
}

// sums returns the digests of what was written, with the file's SHA-256.
func (d *digester) sums(sha256 string) *format.Digests {
	return &format.Digests{MD5: hex.EncodeToString(d.md5.Sum(nil)), SHA256: sha256}
}

// counting adds the bytes read to a shared counter (progress).
type counting struct {
	r io.Reader
	n *atomicInt
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// resolveMirrors returns the base URLs a metalink or mirrorlist gives,
// in its order (http and https only).
func (s *syncer) resolveMirrors(ctx context.Context, u string, metalink bool) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.m.opts.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	var out []string
	if metalink {
		var ml struct {
			Files []struct {
				URLs []struct {
					Protocol string `xml:"protocol,attr"`
					URL      string `xml:",chardata"`
				} `xml:"resources>url"`
			} `xml:"files>file"`
		}
		if err := xml.Unmarshal(b, &ml); err != nil {
			return nil, fmt.Errorf("metalink %s: %w", u, err)
		}
		for _, f := range ml.Files {
			for _, l := range f.URLs {
				v := strings.TrimSpace(l.URL)
				if (l.Protocol == "http" || l.Protocol == "https") && strings.HasSuffix(v, "/repodata/repomd.xml") {
					out = append(out, strings.TrimSuffix(v, "repodata/repomd.xml"))
				}
			}
		}
	} else {
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "http://") || strings.HasPrefix(line, "https://") {
				out = append(out, line)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no http or https mirror", u)
	}
	return out, nil
}

// fetchAny downloads rel, whose digest no signed file gives (a pacman
// database, checked by its detached signature next), into the blob store
// and returns its digest and size.
func (s *syncer) fetchAny(ctx context.Context, rel string, limit int64) (string, int64, error) {
	var digest string
	var size int64
	err := s.get(ctx, rel, func(src string, body io.Reader) error {
		w, err := s.m.opts.Blobs.Create(ctx, limit)
		if err != nil {
			return &finalError{fmt.Errorf("store %s: %w", rel, err)}
		}
		if _, err := io.Copy(w, &counting{r: body, n: &s.prog.Bytes}); err != nil {
			_ = w.Cancel(context.WithoutCancel(ctx))
			if errors.Is(err, blob.ErrTooLarge) {
				return &finalError{fmt.Errorf("%s is larger than %d bytes: refused", src, limit)}
			}
			return err
		}
		info, err := s.commit(ctx, w, "")
		if err != nil {
			return &finalError{fmt.Errorf("store %s: %w", rel, err)}
		}
		digest, size = string(info.Digest), info.Size
		return nil
	})
	return digest, size, err
}
