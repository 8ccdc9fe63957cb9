package httpfast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Handler answers the requests the fast path takes.
type Handler interface {
	// ServeFast answers req into resp and returns true, or returns false
	// having had no effect: the request then goes to net/http. It must
	// not block on the network.
	ServeFast(req *Request, resp *Response) bool
}

// Response is a 200 answer being built: the handler adds its headers and
// the body (bytes or a file); the fast path adds Content-Length, Date and,
// when the connection is closing, Connection.
type Response struct {
	hdr  []byte
	body []byte
	// file, if set, is the body instead: its first size bytes, written
	// within timeout.
	file    *os.File
	size    int64
	timeout time.Duration
}

// Header adds a response header; k is in canonical form and neither k
// nor v holds CR or LF.
func (r *Response) Header(k, v string) {
	r.hdr = append(r.hdr, k...)
	r.hdr = append(r.hdr, ": "...)
	r.hdr = append(r.hdr, v...)
	r.hdr = append(r.hdr, "\r\n"...)
}

// Body sets the body, which must not change while it is written (it is
// not copied).
func (r *Response) Body(b []byte) { r.body = b }

// File sets the body to the first size bytes of f, sent with sendfile;
// the fast path closes f when the answer is written. The write is cut
// after timeout (0: none): a client that stops reading must not hold the
// connection forever. A file shorter than size ends the connection after
// what it had, as net/http does.
func (r *Response) File(f *os.File, size int64, timeout time.Duration) {
	r.file, r.size, r.timeout = f, size, timeout
}

// release closes a file body that was not written.
func (r *Response) release() {
	if r.file != nil {
		_ = r.file.Close()
		r.file = nil
	}
}

// Options configures a Listener.
type Options struct {
	Handler Handler
	// ReadHeaderTimeout bounds reading a request head; IdleTimeout the
	// wait for the next request on a kept-alive connection. Zero means
	// none, as for http.Server.
	ReadHeaderTimeout, IdleTimeout time.Duration
	Log                            *slog.Logger
}

// Listener wraps a listener: it answers the fast requests of each
// accepted connection itself and returns a connection from Accept, for
// an http.Server to serve, when one of its requests is not for the fast
// path (with what was read of it put back).
type Listener struct {
	inner  net.Listener
	opts   Options
	conns  chan net.Conn
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once
	wg     sync.WaitGroup

	mu     sync.Mutex
	active map[net.Conn]struct{}

	date atomic.Pointer[dateValue]
}

// Listen starts accepting connections from inner.
func Listen(inner net.Listener, opts Options) *Listener {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{inner: inner, opts: opts, conns: make(chan net.Conn), done: make(chan struct{}),
		active: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection for net/http.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting, closes the connections waiting for a request on
// the fast path and lets the others finish the answer they are writing.
// Connections already handed to net/http are its to close.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.done)
		err = l.inner.Close()
		l.mu.Lock()
		for c := range l.active {
			// Wakes a read waiting for the next request; the loop then
			// sees closed and ends.
			_ = c.SetReadDeadline(time.Unix(1, 0))
		}
		l.mu.Unlock()
	})
	return err
}

// Shutdown closes l and waits for its connections' loops to end, or for
// ctx (then it closes the connections that are left).
func (l *Listener) Shutdown(ctx context.Context) error {
	_ = l.Close()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Answers still being written (to clients that do not read)
		// are cut.
		l.mu.Lock()
		for c := range l.active {
			_ = c.Close()
		}
		l.mu.Unlock()
		return ctx.Err()
	}
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				_ = l.Close()
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.opts.Log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.mu.Lock()
		if l.closed.Load() {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.active[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(c)
	}
}

// conn is one connection on the fast path.
type conn struct {
	l  *Listener
	nc net.Conn
	// buf[:n] holds what was read and not yet answered.
	buf  []byte
	n    int
	resp Response
	out  []byte
	iov  [2][]byte
	bufs net.Buffers
	// deadline is the read deadline set last.
	deadline time.Time
}

// errHeadTooLong is a request head that does not fit in the buffer.
var errHeadTooLong = errors.New("request head longer than the fast path reads")

func (l *Listener) serve(nc net.Conn) {
	c := &conn{l: l, nc: nc, buf: make([]byte, 4<<10)}
	handedOff := false
	defer func() {
		if p := recover(); p != nil {
			l.opts.Log.Error("panic serving a request", "remote", nc.RemoteAddr().String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		c.resp.release()
		l.mu.Lock()
		delete(l.active, nc)
		l.mu.Unlock()
		if !handedOff {
			_ = nc.Close()
		}
		l.wg.Done()
	}()
	accepted := time.Now()
	for first := true; ; first = false {
		end, err := c.readHead(first, accepted)
		if err != nil && !errors.Is(err, errHeadTooLong) {
			if c.n > 0 && errors.Is(err, io.EOF) {
				// Part of a head, then the end: net/http's to answer (400).
				handedOff = l.handOff(nc, c.buf[:c.n])
			}
			// Closed, timed out or reset: as net/http, nothing to answer.
			return
		}
		var req Request
		ok := err == nil
		if ok {
			req, ok = parse(c.buf[:end])
		}
		if ok {
			c.resp = Response{hdr: append(c.out[:0], "HTTP/1.1 200 OK\r\n"...)}
			ok = l.opts.Handler.ServeFast(&req, &c.resp)
		}
		if !ok {
			c.resp.release() // a handler that declined should not have set one
			handedOff = l.handOff(nc, c.buf[:c.n])
			return
		}
		closing := req.Close || l.closed.Load()
		if err := c.write(req.Head, closing); err != nil || closing {
			return
		}
		c.n = copy(c.buf, c.buf[end:c.n])
	}
}

// headLen returns the length of the request head at the start of b (up
// to and including its empty line, as net/http finds it: lines end in
// LF, with or without CR), or -1 if b holds no whole head.
func headLen(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		k := i + j + 1
		switch {
		case k < len(b) && b[k] == '\n':
			return k + 1
		case k+1 < len(b) && b[k] == '\r' && b[k+1] == '\n':
			return k + 2
		}
		i = k
	}
}

// readHead reads until buf holds a whole request head, and returns its
// length. The wait for a request's first byte is bounded by the idle
// timeout (by the header timeout from accepted for the connection's
// first request), the rest of the head by the header timeout.
func (c *conn) readHead(first bool, accepted time.Time) (int, error) {
	if n := headLen(c.buf[:c.n]); n >= 0 {
		return n, nil // pipelined
	}
	o := &c.l.opts
	switch {
	case first && o.ReadHeaderTimeout > 0:
		c.setDeadline(accepted.Add(o.ReadHeaderTimeout), 0)
	case c.n > 0:
		// Part of the next head came with the last one.
		c.setDeadline(c.headDeadline(), 0)
	case !first && o.IdleTimeout > 0:
		// Not moved for every request: up to an eighth of the timeout
		// (at most a second) early is close enough for an idle timeout,
		// and setting it costs.
		c.setDeadline(time.Now().Add(o.IdleTimeout), min(time.Second, o.IdleTimeout/8))
	case !first:
		c.setDeadline(time.Time{}, 0)
	}
	if c.l.closed.Load() {
		return 0, net.ErrClosed
	}
	for {
		if c.n == len(c.buf) {
			if len(c.buf) >= maxHeader {
				return 0, errHeadTooLong
			}
			b := make([]byte, 2*len(c.buf))
			copy(b, c.buf[:c.n])
			c.buf = b
		}
		waiting := c.n == 0
		m, err := c.nc.Read(c.buf[c.n:])
		c.n += m
		if n := headLen(c.buf[:c.n]); n >= 0 {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if waiting && !first && m > 0 {
			// A head in pieces: the rest within the header timeout.
			c.setDeadline(c.headDeadline(), 0)
			if c.l.closed.Load() {
				return 0, net.ErrClosed // Close's wake-up was just overwritten
			}
		}
	}
}

// headDeadline is the deadline for the rest of a head begun now: none
// without a header timeout, as for http.Server.
func (c *conn) headDeadline() time.Time {
	if d := c.l.opts.ReadHeaderTimeout; d > 0 {
		return time.Now().Add(d)
	}
	return time.Time{}
}

// setDeadline sets the read deadline to t, unless the one set is at most
// slack earlier.
func (c *conn) setDeadline(t time.Time, slack time.Duration) {
	if slack > 0 && !c.deadline.IsZero() && !c.deadline.After(t) && t.Sub(c.deadline) <= slack {
		return
	}
	c.deadline = t
	_ = c.nc.SetReadDeadline(t)
}

// write sends the response built in c.resp: head and body in one write.
func (c *conn) write(head, closing bool) error {
	r := &c.resp
	defer r.release()
	size := int64(len(r.body))
	if r.file != nil {
		size = r.size
	}
	out := r.hdr
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, size, 10)
	out = append(out, "\r\nDate: "...)
	out = append(out, c.l.httpDate()...)
	out = append(out, "\r\n"...)
	if closing {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	var err error
	switch {
	case r.file != nil && !head:
		err = c.writeFile(out)
	case head || len(r.body) == 0:
		_, err = c.nc.Write(out)
	default:
		// Head and body in one writev; the body is not copied, so that a
		// connection keeps no buffer the size of the files it served.
		c.iov = [2][]byte{out, r.body}
		c.bufs = c.iov[:]
		_, err = c.bufs.WriteTo(c.nc)
		c.iov, c.bufs = [2][]byte{}, nil
	}
	c.out = out[:0] // kept for the next answer
	r.body = nil
	return err
}

// writeFile writes head, then the response's file with sendfile, within
// its timeout.
func (c *conn) writeFile(head []byte) error {
	r := &c.resp
	if r.timeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(r.timeout))
		defer func() { _ = c.nc.SetWriteDeadline(time.Time{}) }()
	}
	if _, err := c.nc.Write(head); err != nil {
		return err
	}
	// *net.TCPConn's ReadFrom of a limited *os.File is a sendfile.
	n, err := io.Copy(c.nc, io.LimitReader(r.file, r.size))
	if err == nil && n < r.size {
		err = fmt.Errorf("file body: %d of %d bytes: %w", n, r.size, io.ErrUnexpectedEOF)
	}
	return err
}

// handOff gives nc, with the bytes read from it put back, to net/http.
func (l *Listener) handOff(nc net.Conn, read []byte) bool {
	// No longer l's to wake on Close: net/http owns its deadlines.
	l.mu.Lock()
	delete(l.active, nc)
	l.mu.Unlock()
	_ = nc.SetReadDeadline(time.Time{})
	var hc net.Conn
	if tc, ok := nc.(*net.TCPConn); ok {
		// The *net.TCPConn methods stay reachable: ReadFrom (sendfile of
		// files), CloseWrite.
		hc = &tcpConn{TCPConn: tc, prefix: prefix{b: read}}
	} else {
		hc = &otherConn{Conn: nc, prefix: prefix{b: read}}
	}
	select {
	case l.conns <- hc:
		return true
	case <-l.done:
		return false
	}
}

// prefix is what the fast path read of a connection it handed off.
type prefix struct{ b []byte }

func (p *prefix) read(b []byte) int {
	n := copy(b, p.b)
	if p.b = p.b[n:]; len(p.b) == 0 {
		p.b = nil
	}
	return n
}

type tcpConn struct {
	*net.TCPConn
	prefix
}

func (c *tcpConn) Read(b []byte) (int, error) {
	if len(c.prefix.b) > 0 {
		return c.prefix.read(b), nil
	}
	return c.TCPConn.Read(b)
}

// WriteTo copies the put-back bytes first (the TCPConn's WriteTo would
// skip them).
func (c *tcpConn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(c.prefix.b) > 0 {
		m, err := w.Write(c.prefix.b)
		n, c.prefix.b = int64(m), c.prefix.b[m:]
		if err != nil {
			return n, err
		}
	}
	m, err := c.TCPConn.WriteTo(w)
	return n + m, err
}

type otherConn struct {
	net.Conn
	prefix
}

func (c *otherConn) Read(b []byte) (int, error) {
	if len(c.prefix.b) > 0 {
		return c.prefix.read(b), nil
	}
	return c.Conn.Read(b)
}

// dateValue is the Date header's value for one second.
type dateValue struct {
	unix int64
	v    []byte
}

// httpDate returns the Date value for now, formatted once a second.
func (l *Listener) httpDate() []byte {
	now := time.Now()
	if d := l.date.Load(); d != nil && d.unix == now.Unix() {
		return d.v
	}
	d := &dateValue{unix: now.Unix(), v: now.UTC().AppendFormat(nil, "Mon, 02 Jan 2006 15:04:05 GMT")}
	l.date.Store(d)
	return d.v
}
