package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/packyard/packyard/internal/blob"
)

// A flight is one download of one file from a peer or an upstream. The
// bytes go to an unlinked spool file, which every client asking for the
// file while it runs reads as they arrive, and to a blob writer, committed
// only when the size and digest check out. A failed flight fails every
// follower: each sees its connection aborted, never a short body.
type flight struct {
	key string
	// want is the digest the download is checked against ("" if none).
	want string

	mu      sync.Mutex
	cond    *sync.Cond
	spool   *os.File
	refs    int   // followers and the writer holding spool open
	written int64 // bytes in spool
	// Known once the response headers have arrived (ready).
	ready       bool
	size        int64 // -1 when the upstream sent no length
	contentType string
	source      string
	done        bool
	err         error
	result      *fetched
	// committed: a client has been sent response headers for this
	// download, which can then no longer move to another source.
	committed bool
}

// fetched is what a successful flight produced.
type fetched struct {
	Digest       string
	Size         int64
	ContentType  string
	ETag         string
	LastModified string
	Source       string
}

func newFlight(key, dir string) (*flight, error) {
	f, err := os.CreateTemp(dir, "proxy-spool-*")
	if err != nil {
		return nil, fmt.Errorf("create spool file: %w", err)
	}
	// The file lives on through its descriptor; nothing is left behind on
	// a crash.
	_ = os.Remove(f.Name())
	fl := &flight{key: key, spool: f, refs: 1, size: -1}
	fl.cond = sync.NewCond(&fl.mu)
	return fl, nil
}

// join registers a follower; the caller must call leave.
func (f *flight) join() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

func (f *flight) leave() {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last {
		f.spool.Close()
	}
}

// start records the response headers and wakes the followers.
func (f *flight) start(size int64, contentType, source string) {
	f.mu.Lock()
	f.ready, f.size, f.contentType, f.source = true, size, contentType, source
	f.mu.Unlock()
	f.cond.Broadcast()
}

// rewind empties the flight so that the download can start again from
// another source, unless a client has already been answered from it.
func (f *flight) rewind() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.committed || f.done {
		return false
	}
	if err := f.spool.Truncate(0); err != nil {
		return false
	}
	f.ready, f.size, f.contentType, f.source, f.written = false, -1, "", "", 0
	return true
}

// finish ends the flight with its result or error.
func (f *flight) finish(res *fetched, err error) {
	f.mu.Lock()
	f.done, f.result, f.err = true, res, err
	f.mu.Unlock()
	f.cond.Broadcast()
}

// wait blocks until the flight has ended and returns its result.
func (f *flight) wait(ctx context.Context) (*fetched, error) {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.done && ctx.Err() == nil {
		f.cond.Wait()
	}
	if !f.done {
		return nil, ctx.Err()
	}
	return f.result, f.err
}

// waitReady blocks until the response headers are known or the flight has
// failed before them.
func (f *flight) waitReady(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.ready && !f.done && ctx.Err() == nil {
		f.cond.Wait()
	}
	switch {
	case f.ready:
		return nil
	case f.done && f.err != nil:
		return f.err
	case f.done:
		return nil
	}
	return ctx.Err()
}

// readAt waits until bytes past off are spooled (or the flight ended) and
// reads them. It returns io.EOF at the end of a successful flight and the
// flight's error as soon as it failed.
//
// The last byte is held back until the flight has succeeded: a client
// that knows the length would otherwise take a body whose digest turns
// out wrong as complete, before the abort reaches it.
func (f *flight) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	f.mu.Lock()
	for f.written-1 <= off && !f.done && ctx.Err() == nil {
		f.cond.Wait()
	}
	avail, done, ferr := f.written-1, f.done, f.err
	if done {
		avail = f.written
	}
	f.mu.Unlock()
	switch {
	case done && ferr != nil:
		return 0, ferr
	case avail <= off && ctx.Err() != nil:
		return 0, ctx.Err()
	case avail <= off:
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), avail-off))
	return f.spool.ReadAt(p[:n], off)
}

// write appends b to the spool (the writer side) and wakes the followers.
func (f *flight) write(b []byte) error {
	f.mu.Lock()
	off := f.written
	f.mu.Unlock()
	if _, err := f.spool.WriteAt(b, off); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	f.mu.Lock()
	f.written += int64(len(b))
	f.mu.Unlock()
	f.cond.Broadcast()
	return nil
}

// stream serves the flight's bytes to w as they arrive. Before the first
// byte it sets the headers; a flight that fails afterwards aborts the
// connection (http.ErrAbortHandler), so the client sees an error, never a
// short body that looks complete. It returns the bytes written, and an
// error only when nothing was written.
func (f *flight) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, extra http.Header) (int64, error) {
	var (
		size     int64
		ct       string
		done     bool
		ferr     error
		rewinded = true
	)
	for rewinded {
		if err := f.waitReady(ctx); err != nil {
			return 0, err
		}
		f.mu.Lock()
		// Not ready again: the source failed and the flight was rewound
		// for the next one between waitReady and here.
		rewinded = !f.ready && !f.done
		size, ct, done, ferr = f.size, f.contentType, f.done, f.err
		if done && ferr == nil && f.result != nil {
			size, ct = f.result.Size, f.result.ContentType
		}
		if !rewinded {
			f.committed = true
		}
		f.mu.Unlock()
	}
	if done && ferr != nil {
		return 0, ferr
	}
	h := w.Header()
	for k, v := range extra {
		h[k] = v
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return 0, nil
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := f.readAt(ctx, buf, off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				// The client went away; the download goes on for the
				// others and the cache.
				return off, nil
			}
			off += int64(n)
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			return off, nil
		}
		if err != nil {
			// The status line is out: only cutting the connection tells
			// the client that the body is incomplete.
			panic(http.ErrAbortHandler)
		}
	}
}

// hashingSink spools, hashes and stores what a flight downloads.
type hashingSink struct {
	f     *flight
	blob  blob.Writer
	hash  hash.Hash
	count int64
	limit int64
}

func newSink(f *flight, w blob.Writer, limit int64) *hashingSink {
	return &hashingSink{f: f, blob: w, hash: sha256.New(), limit: limit}
}

func (s *hashingSink) Write(b []byte) (int, error) {
	if s.limit > 0 && s.count+int64(len(b)) > s.limit {
		return 0, fmt.Errorf("%w: more than %d bytes", blob.ErrTooLarge, s.limit)
	}
	if _, err := s.blob.Write(b); err != nil {
		return 0, err
	}
	s.hash.Write(b)
	s.count += int64(len(b))
	if err := s.f.write(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *hashingSink) digest() string { return hex.EncodeToString(s.hash.Sum(nil)) }
