package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The engines the benchmark runs itself, outside `go test`: a private
// PostgreSQL cluster (initdb + pg_ctl), a MinIO server and nginx, each on a
// free loopback port with its files under the scratch directory.

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// postgres is a running private PostgreSQL cluster.
type postgres struct {
	bin  string // directory of initdb and pg_ctl
	dir  string
	port int
	cred *syscall.Credential // who runs it; nil: this process's user
	dbs  int
}

// startPostgres initialises a cluster in dir and starts it. PostgreSQL
// refuses to run as root: then it runs as the postgres user.
func startPostgres(bin, dir string) (*postgres, error) {
	p := &postgres{bin: bin, dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: no postgres user: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			return nil, err
		}
	}
	if out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p.port, _ = strconv.Atoi(port)
	f, err := os.OpenFile(filepath.Join(p.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	// Durable as in production (fsync on); enough connections for several
	// nodes' pools.
	_, err = fmt.Fprintf(f, "\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nmax_connections = 300\nfsync = on\n", p.port, p.dir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "120", "start"); err != nil {
		return nil, fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	return p, nil
}

func (p *postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *postgres) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	cmd.Dir = p.dir
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd.CombinedOutput()
}

// stop shuts the cluster down at once: nothing in it is kept.
func (p *postgres) stop() {
	_, _ = p.run("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop")
}

func (p *postgres) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// newDatabase creates an empty database and returns its DSN.
func (p *postgres) newDatabase(ctx context.Context) (string, error) {
	p.dbs++
	name := fmt.Sprintf("bench_%d", p.dbs)
	conn, err := pgx.Connect(ctx, p.dsn("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return p.dsn(name), nil
}

// minioServer is a running MinIO server.
type minioServer struct {
	cmd      *exec.Cmd
	done     chan error
	endpoint string // http://127.0.0.1:PORT
	user     string
	password string
	client   *minio.Client
	buckets  int
}

// startMinIO starts bin on a free port with its data under dir.
func startMinIO(bin, dir string) (*minioServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	console, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	m := &minioServer{endpoint: "http://" + addr, user: "benchadmin", password: hex.EncodeToString(pw), done: make(chan error, 1)}
	log, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", console, filepath.Join(dir, "data"))
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.user, "MINIO_ROOT_PASSWORD="+m.password, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { m.done <- m.cmd.Wait(); log.Close() }()
	if err := waitHTTP(m.endpoint+"/minio/health/ready", m.done, time.Minute); err != nil {
		m.stop()
		return nil, fmt.Errorf("MinIO: %w (log %s)", err, log.Name())
	}
	m.client, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(m.user, m.password, ""), Region: "us-east-1"})
	if err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

func (m *minioServer) stop() {
	_ = m.cmd.Process.Kill()
	<-m.done
}

// newBucket creates an empty bucket and returns the --blobs URL of a
// store under its prefix "bench".
func (m *minioServer) newBucket(ctx context.Context) (string, error) {
	m.buckets++
	name := fmt.Sprintf("bench-%d", m.buckets)
	if err := m.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return "", fmt.Errorf("create bucket %s: %w", name, err)
	}
	return "s3://" + name + "/bench?endpoint=" + url.QueryEscape(m.endpoint) + "&region=us-east-1", nil
}

// env is what a packyard node needs to reach the store.
func (m *minioServer) env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.user, "AWS_SECRET_ACCESS_KEY=" + m.password}
}

// nginx is a running nginx serving a directory.
type nginx struct {
	cmd  *exec.Cmd
	done chan error
	base string
}

// startNginx serves root on a free port, as a static file server tuned the
// usual way (sendfile, keep-alive), with one worker per core.
func startNginx(bin, dir, root string) (*nginx, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "temp"), 0o755); err != nil {
		return nil, err
	}
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user root;\n" // workers as nobody could not read the scratch directory
	}
	conf := fmt.Sprintf(`%sworker_processes auto;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
	default_type application/octet-stream;
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000;
	client_body_temp_path %[2]s/temp/body;
	proxy_temp_path %[2]s/temp/proxy;
	fastcgi_temp_path %[2]s/temp/fastcgi;
	uwsgi_temp_path %[2]s/temp/uwsgi;
	scgi_temp_path %[2]s/temp/scgi;
	server {
		listen %[3]s;
		root %[4]s;
	}
}
`, userLine, dir, addr, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &nginx{base: "http://" + addr, done: make(chan error, 1)}
	n.cmd = exec.Command(bin, "-p", dir, "-c", confPath, "-g", "daemon off;")
	n.cmd.Stderr = os.Stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	if err := waitHTTP(n.base+"/", n.done, 30*time.Second); err != nil {
		n.stop()
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return n, nil
}

func (n *nginx) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// waitHTTP polls u until it answers (any status but 5xx), the process
// exits or limit passes.
func waitHTTP(u string, exited chan error, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited at start: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("not ready within " + limit.String() + ": " + strings.TrimSpace(fmt.Sprint(err)))
		}
	}
}
