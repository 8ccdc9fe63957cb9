package httpfast

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testHandler answers /fast/… paths; /fast/big has a large body,
// /fast/panic panics, /fast/file sends file (/fast/short claims it is
// longer than it is).
type testHandler struct {
	served atomic.Int64
	file   string
}

var bigBody = bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB

func (h *testHandler) ServeFast(req *Request, resp *Response) bool {
	if !strings.HasPrefix(req.Path, "/fast/") {
		return false
	}
	if req.Path == "/fast/panic" {
		panic("boom")
	}
	h.served.Add(1)
	resp.Header("X-Path", "fast")
	if req.Path == "/fast/file" || req.Path == "/fast/short" {
		f, err := os.Open(h.file)
		if err != nil {
			panic(err)
		}
		fi, _ := f.Stat()
		size := fi.Size()
		if req.Path == "/fast/short" {
			size += 10
		}
		resp.File(f, size, time.Minute)
		return true
	}
	if req.Path == "/fast/big" {
		resp.Body(bigBody)
	} else {
		resp.Body([]byte("fast " + req.Path))
	}
	return true
}

// slowHandler is net/http's side: it names the request it got.
func slowHandler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Path", "slow")
	fmt.Fprintf(w, "slow %s %s %d", r.Method, r.URL.Path, len(b))
}

type testServer struct {
	addr string
	l    *Listener
	hs   *http.Server
	h    *testHandler
	log  *lockedWriter
	// conns are the connections net/http was given.
	mu    sync.Mutex
	conns []net.Conn
}

func startServer(t *testing.T, opts Options, slow http.Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{h: &testHandler{}, log: &lockedWriter{w: &bytes.Buffer{}}}
	if slow == nil {
		slow = http.HandlerFunc(slowHandler)
	}
	opts.Handler = s.h
	opts.Log = slog.New(slog.NewTextHandler(s.log, nil))
	s.l = Listen(ln, opts)
	s.addr = ln.Addr().String()
	s.hs = &http.Server{Handler: slow, ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			return ctx
		}}
	done := make(chan error, 1)
	go func() { done <- s.hs.Serve(s.l) }()
	t.Cleanup(func() {
		_ = s.hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.l.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (s *testServer) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readResponse reads one response and returns its X-Path and body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, resp.Header.Get("X-Path"), string(b)
}

// TestPipelinedRequestsAndHandOff: requests sent at once are answered in
// order; the first one the fast path does not take goes to net/http with
// its body, and net/http answers the rest of the connection.
func TestPipelinedRequestsAndHandOff(t *testing.T) {
	s := startServer(t, Options{}, nil)
	c, br := s.dial(t)
	_, err := io.WriteString(c, "GET /fast/a HTTP/1.1\r\nHost: h\r\n\r\n"+
		"GET /fast/b HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n"+
		"PUT /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"+
		"GET /fast/c HTTP/1.1\r\nHost: h\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ path, body string }{
		{"fast", "fast /fast/a"},
		{"fast", "fast /fast/b"},
		{"slow", "slow PUT /slow 3"},
		{"slow", "slow GET /fast/c 0"},
	} {
		resp, path, body := readResponse(t, br, http.MethodGet)
		if resp.StatusCode != http.StatusOK || path != want.path || body != want.body {
			t.Fatalf("got %d %s %q; want 200 %s %q", resp.StatusCode, path, body, want.path, want.body)
		}
	}
	if n := s.h.served.Load(); n != 2 {
		t.Fatalf("fast path answered %d requests, want 2", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) != 1 {
		t.Fatalf("net/http got %d connections, want 1", len(s.conns))
	}
	// The connection net/http serves keeps *net.TCPConn's ReadFrom
	// (sendfile of files) and CloseWrite.
	if _, ok := s.conns[0].(*tcpConn); !ok {
		t.Fatalf("handed-off connection is a %T", s.conns[0])
	}
}

// TestResponses: the fast path's answers as an HTTP client reads them.
func TestResponses(t *testing.T) {
	s := startServer(t, Options{}, nil)
	c, br := s.dial(t)
	send := func(req string) {
		t.Helper()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
	}

	send("HEAD /fast/a HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, path, body := readResponse(t, br, http.MethodHead)
	if path != "fast" || body != "" || resp.ContentLength != int64(len("fast /fast/a")) {
		t.Fatalf("HEAD: %s, body %q, length %d", path, body, resp.ContentLength)
	}
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
	}

	send("GET /fast/big HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, path, body := readResponse(t, br, http.MethodGet); path != "fast" || body != string(bigBody) {
		t.Fatalf("big body: %s, %d bytes (want %d)", path, len(body), len(bigBody))
	}

	send("GET /fast/z HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	resp, path, body = readResponse(t, br, http.MethodGet)
	if path != "fast" || body != "fast /fast/z" || !resp.Close {
		t.Fatalf("close: %s %q, Connection %q", path, body, resp.Header.Get("Connection"))
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close, read %v, %v; want EOF", n, err)
	}
}

// TestHandedOffAsIs: requests the fast path does not read (too long a
// head, bare LF line ends, garbage) reach net/http byte for byte, which
// answers them as it would have.
func TestHandedOffAsIs(t *testing.T) {
	s := startServer(t, Options{}, nil)
	for _, tc := range []struct {
		name, req, path string
		status          int
	}{
		{"long head", "GET /fast/a HTTP/1.1\r\nHost: h\r\nUser-Agent: " + strings.Repeat("x", 10<<10) + "\r\n\r\n", "slow", 200},
		{"bare LF", "GET /fast/a HTTP/1.1\nHost: h\n\n", "slow", 200},
		{"garbage", "BLAH\r\n\r\n", "", 400},
		{"no host", "GET /fast/a HTTP/1.1\r\n\r\n", "", 400},
		{"http/1.0", "GET /fast/a HTTP/1.0\r\n\r\n", "slow", 200},
		// A head cut short by the end of the client's stream.
		{"truncated", "GET /fast/a HTTP/1.1\r\nHost: h\r\n", "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := s.dial(t)
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			if tc.name == "truncated" {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			resp, path, _ := readResponse(t, br, http.MethodGet)
			if resp.StatusCode != tc.status || path != tc.path {
				t.Fatalf("got %d %q; want %d %q", resp.StatusCode, path, tc.status, tc.path)
			}
		})
	}
	if n := s.h.served.Load(); n != 0 {
		t.Fatalf("fast path answered %d", n)
	}
}

// TestTimeouts: an idle kept-alive connection is closed after the idle
// timeout, and a request head that does not arrive in time after the
// header timeout.
func TestTimeouts(t *testing.T) {
	// Each timeout short where it is tested, the other long.
	idle := startServer(t, Options{ReadHeaderTimeout: time.Minute, IdleTimeout: 400 * time.Millisecond}, nil)
	header := startServer(t, Options{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute}, nil)
	closedWithin := func(t *testing.T, br *bufio.Reader, d time.Duration) {
		t.Helper()
		start := time.Now()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("read %v; want EOF", err)
		}
		if e := time.Since(start); e > d {
			t.Fatalf("closed after %s; want within %s", e, d)
		}
	}
	t.Run("idle", func(t *testing.T) {
		c, br := idle.dial(t)
		// Requests closer together than the timeout keep it open.
		for i := range 3 {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			if _, err := io.WriteString(c, "GET /fast/a HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			readResponse(t, br, http.MethodGet)
		}
		start := time.Now()
		closedWithin(t, br, 2*time.Second)
		// At most an eighth of the timeout early (350 ms), and some
		// leeway for the test's own timing.
		if e := time.Since(start); e < 300*time.Millisecond {
			t.Fatalf("closed %s after the last answer; idle timeout 400ms", e)
		}
	})
	t.Run("first head", func(t *testing.T) {
		c, br := header.dial(t)
		_, _ = io.WriteString(c, "GET /fast/a HTTP/1.1\r\n")
		closedWithin(t, br, 2*time.Second)
	})
	t.Run("no header timeout", func(t *testing.T) {
		// As http.Server: without a header timeout, a head once begun
		// has no deadline (the idle timeout is for the wait before it).
		s := startServer(t, Options{IdleTimeout: 300 * time.Millisecond}, nil)
		c, br := s.dial(t)
		_, _ = io.WriteString(c, "GET /fast/a HTTP/1.1\r\nHost: h\r\n\r\n")
		readResponse(t, br, http.MethodGet)
		_, _ = io.WriteString(c, "GET /fast/b HTTP/1.1\r\n")
		time.Sleep(600 * time.Millisecond)
		_, _ = io.WriteString(c, "Host: h\r\n\r\n")
		if _, path, body := readResponse(t, br, http.MethodGet); path != "fast" || body != "fast /fast/b" {
			t.Fatalf("got %s %q", path, body)
		}
	})
	t.Run("next head", func(t *testing.T) {
		c, br := header.dial(t)
		_, _ = io.WriteString(c, "GET /fast/a HTTP/1.1\r\nHost: h\r\n\r\n")
		readResponse(t, br, http.MethodGet)
		_, _ = io.WriteString(c, "GET /fast/b HTTP/1.1\r\n")
		closedWithin(t, br, 2*time.Second)
	})
}

// TestPanicClosesOnlyItsConnection: a handler's panic is logged and ends
// its connection; the server goes on.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	s := startServer(t, Options{}, nil)
	c, br := s.dial(t)
	_, _ = io.WriteString(c, "GET /fast/panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read %v; want EOF", err)
	}
	c2, br2 := s.dial(t)
	_, _ = io.WriteString(c2, "GET /fast/a HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, path, _ := readResponse(t, br2, http.MethodGet); path != "fast" {
		t.Fatalf("after a panic: %s", path)
	}
	if !strings.Contains(s.log.String(), "boom") {
		t.Fatalf("panic not logged: %s", s.log.String())
	}
}

// TestShutdownClosesIdleConnections: shut down as packyard serve does
// (the http.Server, then the Listener), the idle connections of both
// paths are closed, a head being read too, and Serve returns.
func TestShutdownClosesIdleConnections(t *testing.T) {
	s := startServer(t, Options{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute}, nil)
	c, br := s.dial(t)
	_, _ = io.WriteString(c, "GET /fast/a HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, br, http.MethodGet)
	c2, br2 := s.dial(t)
	_, _ = io.WriteString(c2, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, path, _ := readResponse(t, br2, http.MethodGet); path != "slow" {
		t.Fatalf("got %s", path)
	}
	c3, br3 := s.dial(t)
	_, _ = io.WriteString(c3, "GET /fast/a HTTP/1.1\r\nHost: h\r\n\r\nGET /fast/b HTTP/1.1\r\n")
	readResponse(t, br3, http.MethodGet)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.hs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e > 2*time.Second {
		t.Fatalf("shutdown took %s", e)
	}
	for i, br := range []*bufio.Reader{br, br2, br3} {
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("connection %d: read %v; want EOF", i+1, err)
		}
	}
	if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// TestClients: Go HTTP clients, keep-alive, concurrent, mixing requests
// the fast path answers with ones it hands over (a range of a file,
// served by net/http with sendfile).
func TestClients(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, bigBody, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Options{IdleTimeout: time.Minute, ReadHeaderTimeout: 5 * time.Second},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/file" {
				http.ServeFile(w, r, file)
				return
			}
			slowHandler(w, r)
		}))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				// Answered by the fast path, or by net/http once the
				// connection was handed over.
				p := fmt.Sprintf("/fast/%d-%d", i, j)
				u, want, want2, status := "http://"+s.addr+p, "fast "+p, "slow GET "+p+" 0", http.StatusOK
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				if j%10 == 9 {
					req, _ = http.NewRequest(http.MethodGet, "http://"+s.addr+"/file", nil)
					req.Header.Set("Range", "bytes=16-31")
					want, want2, status = string(bigBody[16:32]), string(bigBody[16:32]), http.StatusPartialContent
				}
				resp, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != status || string(b) != want && string(b) != want2 {
					errs <- fmt.Errorf("%s: %d %q, %v; want %d %q", u, resp.StatusCode, b, err, status, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.h.served.Load() == 0 {
		t.Fatal("the fast path answered none")
	}
}

// TestFileBodies: a file body is sent whole (with sendfile); HEAD sends
// its length only; a file shorter than the length announced ends the
// connection after what it had, so the client sees a cut answer.
func TestFileBodies(t *testing.T) {
	s := startServer(t, Options{}, nil)
	s.h.file = filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(s.h.file, bigBody, 0o644); err != nil {
		t.Fatal(err)
	}
	c, br := s.dial(t)
	_, _ = io.WriteString(c, "GET /fast/file HTTP/1.1\r\nHost: h\r\n\r\nHEAD /fast/file HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, path, body := readResponse(t, br, http.MethodGet); path != "fast" || body != string(bigBody) {
		t.Fatalf("GET file: %s, %d bytes (want %d)", path, len(body), len(bigBody))
	}
	if resp, _, body := readResponse(t, br, http.MethodHead); resp.ContentLength != int64(len(bigBody)) || body != "" {
		t.Fatalf("HEAD file: length %d, %d bytes of body", resp.ContentLength, len(body))
	}
	_, _ = io.WriteString(c, "GET /fast/short HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != len(bigBody) {
		t.Fatalf("short file: read %d bytes, %v; want %d and an unexpected EOF", len(b), err, len(bigBody))
	}
}
