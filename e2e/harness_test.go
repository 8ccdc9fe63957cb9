// Package e2e runs the real packyard binary against the real clients that
// use it: dnf, rpm, curl and cadaver.
//
// Run it from the module root with
//
//	CGO_ENABLED=0 go test ./e2e/
//
// TestMain builds cmd/packyard once into a temporary directory; every test
// starts its own server on 127.0.0.1 with its own data directory. A test
// that needs a tool that is not installed (dnf, rpm, cadaver, curl), or
// root for dnf --installroot, skips; with PACKYARD_REQUIRE_REAL=1 (as CI
// sets it) a missing tool is a failure instead. dnf never touches the host:
// every run has its own installroot, cache, configuration file and empty
// reposdir.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/client"
	"github.com/packyard/packyard/internal/testengine"
)

// packyardBin is the binary TestMain built; it is written once, before any
// test runs, and only read afterwards.
var packyardBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "packyard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	packyardBin = filepath.Join(dir, "packyard")
	build := exec.Command("go", "build", "-o", packyardBin, "./cmd/packyard")
	build.Dir = ".." // the module root; go test runs in the package directory
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/packyard: %v\n%s", err, out)
		return 1
	}
	defer testengine.Stop() // PostgreSQL and MinIO, if a test started them
	return m.Run()
}

// requireReal reports whether a missing tool must fail the test.
func requireReal() bool { return os.Getenv("PACKYARD_REQUIRE_REAL") == "1" }

// requireTool returns the path of an external tool, skipping the test when
// it is not installed (failing under PACKYARD_REQUIRE_REAL=1).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if requireReal() {
			t.Fatalf("%s is required (PACKYARD_REQUIRE_REAL=1) but not found: %v", name, err)
		}
		t.Skipf("%s not found (%v); set PACKYARD_REQUIRE_REAL=1 to make this a failure", name, err)
	}
	return p
}

// requireRoot skips (or fails under PACKYARD_REQUIRE_REAL=1) unless the
// test runs as root, which rpm needs to install into an installroot.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if requireReal() {
		t.Fatal("dnf --installroot needs root (PACKYARD_REQUIRE_REAL=1)")
	}
	t.Skip("dnf --installroot needs root; set PACKYARD_REQUIRE_REAL=1 to make this a failure")
}

// cleanEnv is the test process's environment without PACKYARD_* settings,
// so that nothing on the developer's machine changes a server or the CLI.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PACKYARD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// server is one running `packyard serve` process.
type server struct {
	t     *testing.T
	url   string // http://127.0.0.1:port
	token string // the preset admin token
	http  *http.Client

	cmd     *exec.Cmd
	logs    *logSink
	logPath string
	exited  chan struct{} // closed when the process has exited
	stopped bool          // stop or kill9 already ran
	killed  bool          // kill9 ran
	data    string        // the data directory

	// allowErrors lets the server log at ERROR level without failing the
	// test: set by tests that take a backend away on purpose.
	allowErrors bool
}

// startServer runs `packyard serve` on dataDir and returns once /readyz
// answers 200. The server binds 127.0.0.1:0 and the harness reads the bound
// address from its startup log line, so parallel tests never race for a
// port. Cleanup stops it with SIGTERM and fails the test unless it exits 0;
// if the test failed, the server's log is shown.
func startServer(t *testing.T, dataDir string) *server {
	t.Helper()
	return startServerEnv(t, dataDir)
}

// startServerEnv is startServer with extra server settings in the
// environment ("PACKYARD_WATCH_SETTLE=300ms").
func startServerEnv(t *testing.T, dataDir string, env ...string) *server {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "packyard.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		t: t, token: randomToken(t), logPath: logPath, data: dataDir,
		logs:   newLogSink(f),
		exited: make(chan struct{}),
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 100, MaxIdleConnsPerHost: 100, IdleConnTimeout: 30 * time.Second,
			// A request sent with "Expect: 100-continue" holds its body
			// until the handler reads it (see expectContinue).
			ExpectContinueTimeout: time.Minute,
		}},
	}
	s.cmd = exec.Command(packyardBin, "serve", "--data", dataDir, "--listen", "127.0.0.1:0")
	s.cmd.Env = cleanEnv(append([]string{"PACKYARD_ADMIN_TOKEN=" + s.token, "PACKYARD_LOG_FORMAT=json"}, env...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start packyard serve: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
		f.Close()
	}()
	t.Cleanup(func() {
		s.http.CloseIdleConnections()
		if !s.stopped {
			if err := s.stop(); err != nil {
				t.Error(err)
			}
		}
		if !s.killed && !s.allowErrors {
			// A server that was not killed must not have logged an
			// error: 5xx answers and failed publishes log at ERROR.
			if errs := s.logs.grep(`"level":"ERROR"`); len(errs) > 0 {
				t.Errorf("server logged errors:\n%s", strings.Join(errs, "\n"))
			}
		}
		if t.Failed() {
			t.Logf("server log (%s, data %s):\n%s", s.logPath, dataDir, s.logs.tail(400))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	line, err := s.logs.waitFor(ctx, s.exited, "packyard serving")
	if err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	addr, _ := line["listen"].(string)
	if addr == "" {
		t.Fatalf("startup log line has no listen address: %v", line)
	}
	s.url = "http://" + addr
	s.waitReady(ctx)
	return s
}

// waitReady polls /readyz until it answers 200.
func (s *server) waitReady(ctx context.Context) {
	s.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := s.http.Get(s.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("server at %s not ready: last error %v", s.url, err)
		case <-s.exited:
			s.t.Fatalf("server exited before it was ready: %v", s.cmd.ProcessState)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and waits for the process to exit; it returns an
// error unless the process exits 0 within 20 seconds.
func (s *server) stop() error {
	if err := s.terminate(); err != nil {
		return err
	}
	return s.waitExit(20 * time.Second)
}

// terminate sends SIGTERM.
func (s *server) terminate() error {
	s.stopped = true
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	return nil
}

// waitExit waits for the process to exit and returns an error unless it
// exits 0 within limit (then it is killed).
func (s *server) waitExit(limit time.Duration) error {
	select {
	case <-s.exited:
	case <-time.After(limit):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("server did not exit within %s of SIGTERM", limit)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("server exited with %v after SIGTERM, want exit status 0", s.cmd.ProcessState)
	}
	return nil
}

// kill9 kills the server with SIGKILL and waits until it is gone.
func (s *server) kill9() {
	s.t.Helper()
	s.stopped, s.killed = true, true
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("SIGKILL: %v", err)
	}
	<-s.exited
	s.http.CloseIdleConnections()
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pyt_e2e_" + hex.EncodeToString(b)
}

// do sends a request with the admin token and returns the response with its
// whole body read.
func (s *server) do(method, path string, body io.Reader, size int64, hdr http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// get fetches a path without credentials (reads are public) and fails the
// test unless the answer is 200.
func (s *server) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := s.http.Get(s.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	return b
}

// apiJSON calls the API with the admin token, checks the status and decodes
// the answer into out (if not nil).
func (s *server) apiJSON(t *testing.T, method, path string, in any, want int, out any) {
	t.Helper()
	var body io.Reader
	var size int64
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body, size = bytes.NewReader(b), int64(len(b))
	}
	resp, b, err := s.do(method, path, body, size, http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, path, resp.Status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
}

// createRepo creates a hosted rpm repository through the API.
func (s *server) createRepo(t *testing.T, name string) {
	t.Helper()
	s.apiJSON(t, http.MethodPost, "/api/v1/repos", map[string]string{"name": name, "format": "rpm", "kind": "hosted"}, http.StatusCreated, nil)
}

// repoInfo returns GET /api/v1/repos/{repo}.
func (s *server) repoInfo(t *testing.T, repo string) client.Repo {
	t.Helper()
	var r client.Repo
	s.apiJSON(t, http.MethodGet, "/api/v1/repos/"+url.PathEscape(repo), nil, http.StatusOK, &r)
	return r
}

// packages returns GET /api/v1/repos/{repo}/packages.
func (s *server) packages(t *testing.T, repo string) []client.Package {
	t.Helper()
	var p []client.Package
	s.apiJSON(t, http.MethodGet, "/api/v1/repos/"+url.PathEscape(repo)+"/packages", nil, http.StatusOK, &p)
	return p
}

// expectContinue makes the client send a request body only once the
// server's handler starts reading it: when a gatedReader body reaches its
// gate, the upload is certainly being handled, not queued in a socket.
func expectContinue() http.Header { return http.Header{"Expect": {"100-continue"}} }

// putPackage uploads one file by API PUT and returns the status and the
// decoded answer (nil unless 2xx). err is a transport error.
func (s *server) putPackage(repo, filename string, body io.Reader, size int64, hdr http.Header) (int, *client.UploadResult, []byte, error) {
	resp, b, err := s.do(http.MethodPut, "/api/v1/repos/"+url.PathEscape(repo)+"/packages/"+url.PathEscape(filename), body, size, hdr)
	if err != nil {
		if resp != nil {
			return resp.StatusCode, nil, b, err
		}
		return 0, nil, b, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, nil, b, nil
	}
	var res client.UploadResult
	if err := json.Unmarshal(b, &res); err != nil {
		return resp.StatusCode, nil, b, fmt.Errorf("decode upload answer %q: %w", b, err)
	}
	return resp.StatusCode, &res, b, nil
}

// mustPut uploads a package and fails the test unless the answer is 201.
func (s *server) mustPut(t *testing.T, repo string, p builtRPM) *client.UploadResult {
	t.Helper()
	code, res, b, err := s.putPackage(repo, p.file, bytes.NewReader(p.data), int64(len(p.data)), nil)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("PUT %s: status %d, err %v: %s", p.file, code, err, b)
	}
	return res
}

// cli runs the packyard CLI against the server and returns its stdout,
// stderr and exit code.
func (s *server) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	full := append([]string{"--server", s.url, "--token", s.token}, args...)
	return run(t, cleanEnv("HOME="+t.TempDir()), nil, packyardBin, full...)
}

// run runs a command with a time limit and returns its stdout, stderr and
// exit code; it fails the test if the command cannot be started or does not
// finish within two minutes.
func run(t *testing.T, env []string, stdin io.Reader, name string, args ...string) (string, string, int) {
	t.Helper()
	return runIn(t, "", env, stdin, name, args...)
}

// runIn is run in the working directory dir ("" for the test's).
func runIn(t *testing.T, dir string, env []string, stdin io.Reader, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: did not finish in time\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", name, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// mustRun runs a command and fails the test unless it exits 0.
func mustRun(t *testing.T, env []string, stdin io.Reader, name string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, env, stdin, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// logSink keeps a server's output: it writes it to a file and keeps its
// lines so that tests can wait for a log message.
type logSink struct {
	mu      sync.Mutex
	f       *os.File
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced when a line arrives
}

func newLogSink(f *os.File) *logSink {
	return &logSink{f: f, changed: make(chan struct{})}
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.Write(p)
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = append([]byte(nil), l.partial[i+1:]...)
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// find returns the first JSON log line whose msg is msg.
func (l *logSink) find(msg string) (map[string]any, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) == nil && m["msg"] == msg {
			return m, nil
		}
	}
	return nil, l.changed
}

// waitFor waits until the server logs msg, the process exits or ctx ends.
func (l *logSink) waitFor(ctx context.Context, exited <-chan struct{}, msg string) (map[string]any, error) {
	for {
		m, changed := l.find(msg)
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-exited:
			if m, _ := l.find(msg); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("process exited before logging %q:\n%s", msg, l.tail(100))
		case <-ctx.Done():
			return nil, fmt.Errorf("no %q in the log: %w", msg, ctx.Err())
		}
	}
}

// tail returns the last n lines of output.
func (l *logSink) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n" + string(l.partial)
}

// grep returns the log lines that contain s.
func (l *logSink) grep(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// gatedReader yields data up to cut, signals reached, and yields the rest
// only once open is closed: an upload that is certainly in flight.
type gatedReader struct {
	data    []byte
	off     int
	cut     int
	reached chan struct{}
	open    <-chan struct{}
	passed  bool
}

func newGatedReader(data []byte, cut int, open <-chan struct{}) *gatedReader {
	return &gatedReader{data: data, cut: cut, reached: make(chan struct{}), open: open}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	if g.off == g.cut && !g.passed {
		close(g.reached)
		<-g.open
		g.passed = true
	}
	end := len(g.data)
	if !g.passed {
		end = g.cut
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	return n, nil
}
