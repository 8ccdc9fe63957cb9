package testengine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a new, empty bucket on the test binary's MinIO server.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Bucket    string
}

// minioReadyTimeout bounds the start of MinIO, from exec to a live answer.
const minioReadyTimeout = time.Minute

var (
	minioOnce sync.Once
	minioSrv  *minioServer
	minioErr  error
)

// errNoMinIO means that no minio binary was found.
var errNoMinIO = errors.New("minio server binary not found")

// minioServer is the MinIO server of the test binary: one process on a
// loopback port with its data in a temporary directory.
type minioServer struct {
	bin      string
	dir      string // holds data/, certs/ and minio.log
	addr     string // 127.0.0.1:PORT, kept across restarts
	user     string
	password string
	client   *minio.Client
	buckets  atomic.Int64

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has exited
}

// MinIO returns a new empty bucket on the MinIO server of the test binary,
// which it starts on first use. The binary is $PACKYARD_MINIO, else minio
// on PATH, else $GOPATH/bin/minio; without one the test is skipped (or fails
// under PACKYARD_REQUIRE_REAL=1).
func MinIO(t testing.TB) S3 {
	t.Helper()
	srv := minioServerFor(t)
	name := fmt.Sprintf("test-%d", srv.buckets.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("testengine: create MinIO bucket %s: %v", name, err)
	}
	return S3{Endpoint: "http://" + srv.addr, AccessKey: srv.user, SecretKey: srv.password, Bucket: name}
}

// MinIOStop kills the MinIO server, as a crash would, to test how a client
// behaves during an outage. It affects every test of the binary, so such a
// test must not run in parallel with others that use MinIO. If the test does
// not call MinIOStart, the server is started again when the test ends.
func MinIOStop(t testing.TB) {
	t.Helper()
	srv := minioServerFor(t)
	srv.stop()
	t.Cleanup(func() {
		if err := srv.start(); err != nil {
			t.Errorf("testengine: restart MinIO: %v", err)
		}
	})
}

// MinIOStart starts the MinIO server stopped by MinIOStop again, on the same
// address and with the same data, and returns once it answers.
func MinIOStart(t testing.TB) {
	t.Helper()
	srv := minioServerFor(t)
	if err := srv.start(); err != nil {
		t.Fatalf("testengine: restart MinIO: %v", err)
	}
}

// minioServerFor returns the server, starting it on first use.
func minioServerFor(t testing.TB) *minioServer {
	t.Helper()
	minioOnce.Do(func() { minioSrv, minioErr = newMinIO() })
	if errors.Is(minioErr, errNoMinIO) {
		Unavailable(t, "testengine: %v", minioErr)
	}
	if minioErr != nil {
		t.Fatalf("testengine: %v", minioErr)
	}
	return minioSrv
}

// newMinIO starts a server with random root credentials and registers its
// shutdown.
func newMinIO() (*minioServer, error) {
	bin, err := findMinIO()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "packyard-minio-")
	if err != nil {
		return nil, fmt.Errorf("start MinIO: %w", err)
	}
	srv := &minioServer{bin: bin, dir: dir, user: "u" + rand.Text(), password: rand.Text()}
	// A free port found by listening may be taken before MinIO binds it.
	for range 3 {
		if srv.addr, err = freeLoopbackAddr(); err != nil {
			break
		}
		if err = srv.start(); err == nil {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	atExit(func() {
		srv.stop()
		os.RemoveAll(dir)
	})
	srv.client, err = minio.New(srv.addr, &minio.Options{
		Creds: credentials.NewStaticV4(srv.user, srv.password, ""),
	})
	if err != nil {
		return nil, fmt.Errorf("MinIO client: %w", err)
	}
	return srv, nil
}

// findMinIO returns the path of the minio binary.
func findMinIO() (string, error) {
	if p := os.Getenv("PACKYARD_MINIO"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w on PATH, in $GOPATH/bin or in $PACKYARD_MINIO (install it with "+
		"CGO_ENABLED=0 go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)", errNoMinIO)
}

// start runs the server, unless it is running, and waits until it answers.
func (s *minioServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	console, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	logName := filepath.Join(s.dir, "minio.log")
	log, err := os.OpenFile(logName, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start MinIO: %w", err)
	}
	cmd := exec.Command(s.bin, "server", "--quiet",
		"--address", s.addr, "--console-address", console,
		"--certs-dir", filepath.Join(s.dir, "certs"),
		filepath.Join(s.dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.user,
		"MINIO_ROOT_PASSWORD="+s.password,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start MinIO %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(exited)
	}()
	if err := waitMinIO(s.addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		out, _ := os.ReadFile(logName)
		return fmt.Errorf("start MinIO on %s: %w; its log:\n%s", s.addr, err, lastLines(string(out), 20))
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// stop kills the server, if it is running, and waits for it to exit.
func (s *minioServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// waitMinIO polls the readiness endpoint of the server at addr until it
// answers 200, the process exits, or minioReadyTimeout passes. Readiness
// rather than liveness: a live server may still answer S3 requests with
// 503 while it initializes, which a test would take for an outage.
func waitMinIO(addr string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	url := "http://" + addr + "/minio/health/ready"
	deadline := time.After(minioReadyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && iamReady(client, addr) {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-deadline:
			return fmt.Errorf("no answer from %s after %v", url, minioReadyTimeout)
		case <-tick.C:
		}
	}
}

// iamReady reports whether MinIO judges credentials yet: "ready" comes
// before its IAM subsystem is, and until then a request with unknown
// credentials is answered 503 ("IAM sub-system not initialized yet")
// instead of 403, which a test of wrong credentials would take for an
// outage.
func iamReady(client *http.Client, addr string) bool {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return false
	}
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=packyard-probe/"+time.Now().UTC().Format("20060102")+
		"/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="+strings.Repeat("0", 64))
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusForbidden
}

// freeLoopbackAddr returns a loopback address with a port that was free.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
