package testengine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NginxOptions configures a static nginx server.
type NginxOptions struct {
	// LimitRate, when set, is nginx's limit_rate for every response (e.g.
	// "512k"): bytes per second per connection, for tests that need a
	// download to be in flight for a while.
	LimitRate string
	// Server holds extra directives for the server block, as nginx
	// configuration text.
	Server string
}

// Nginx is a static nginx server on a free loopback port, serving a
// directory. Unlike PostgreSQL and MinIO it is cheap, so each test starts
// its own; it is stopped when the test ends.
type Nginx struct {
	// URL is the server's base URL, without a trailing slash.
	URL string
	// Root is the directory served at URL/.
	Root string

	addr   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// AccessEntry is one request in an Nginx's access log.
type AccessEntry struct {
	Method string
	Path   string
	Status int
	Bytes  int64
}

// StartNginx starts nginx serving root (created if missing) on a free
// loopback port. When nginx is not installed (Debian package nginx-light)
// the test is skipped, or fails under PACKYARD_REQUIRE_REAL=1.
func StartNginx(t testing.TB, root string, opts NginxOptions) *Nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			Unavailable(t, "nginx not found (Debian package nginx-light)")
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := &Nginx{URL: "http://" + addr, Root: root, addr: addr, dir: dir}
	for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if err := os.MkdirAll(filepath.Join(dir, "temp", d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(n.config(opts)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.start(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill)
	return n
}

// config returns the nginx.conf text.
func (n *Nginx) config(opts NginxOptions) string {
	var b strings.Builder
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody, who cannot read the
		// tests' private temporary directories.
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	default_type application/octet-stream;
	types {
		application/xml xml;
		text/plain txt asc;
	}
	log_format packyard_test '$request_method $uri $status $body_bytes_sent';
	access_log %[1]s/access.log packyard_test;
	client_body_temp_path %[1]s/temp/body;
	proxy_temp_path %[1]s/temp/proxy;
	fastcgi_temp_path %[1]s/temp/fastcgi;
	uwsgi_temp_path %[1]s/temp/uwsgi;
	scgi_temp_path %[1]s/temp/scgi;
	sendfile on;
	server {
		listen %[2]s;
		root %[3]s;
		autoindex on;
`, n.dir, n.addr, n.Root)
	if opts.LimitRate != "" {
		fmt.Fprintf(&b, "\t\tlimit_rate %s;\n", opts.LimitRate)
	}
	if opts.Server != "" {
		b.WriteString(opts.Server + "\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func (n *Nginx) start(bin string) error {
	cmd := exec.Command(bin, "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"), "-g", "daemon off;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.Create(filepath.Join(n.dir, "stderr"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start nginx: %w", err)
	}
	n.cmd = cmd
	n.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(n.exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-n.exited:
			b, _ := os.ReadFile(filepath.Join(n.dir, "stderr"))
			e, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			return fmt.Errorf("nginx exited at start: %s%s", lastLines(string(b), 10), lastLines(string(e), 10))
		case <-ctx.Done():
			n.kill()
			return errors.New("nginx did not start listening within 15 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill stops nginx abruptly (SIGKILL to its master and workers), cutting
// every download in flight; Start brings it back on the same port.
func (n *Nginx) Kill(t testing.TB) {
	t.Helper()
	n.kill()
}

func (n *Nginx) kill() {
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

// Start starts nginx again after Kill, on the same port and configuration.
func (n *Nginx) Start(t testing.TB) {
	t.Helper()
	if n.cmd != nil {
		t.Fatal("nginx is already running")
	}
	if err := n.start(n.cmd0()); err != nil {
		t.Fatal(err)
	}
}

// cmd0 returns the nginx binary's path.
func (n *Nginx) cmd0() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return "/usr/sbin/nginx"
}

// Access returns the requests nginx has logged so far. nginx writes each
// line just after its response ends, so a client that has read a
// response may look here a moment before its line is written.
func (n *Nginx) Access(t testing.TB) []AccessEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(n.dir, "access.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []AccessEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e AccessEntry
		if _, err := fmt.Sscanf(sc.Text(), "%s %s %d %d", &e.Method, &e.Path, &e.Status, &e.Bytes); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Requests counts the logged requests whose path ends with suffix.
func (n *Nginx) Requests(t testing.TB, suffix string) int {
	t.Helper()
	c := 0
	for _, e := range n.Access(t) {
		if strings.HasSuffix(e.Path, suffix) {
			c++
		}
	}
	return c
}

// Get fetches URL/path and returns the status code, for tests that check
// what the server serves.
func (n *Nginx) Get(t testing.TB, path string) int {
	t.Helper()
	resp, err := http.Get(n.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
