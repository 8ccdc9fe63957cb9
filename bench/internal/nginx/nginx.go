// Package nginx runs nginx for the benchmarks, as an upstream that serves
// a directory or as a proxy under test: a foreground instance with every
// file under one scratch directory, on free loopback ports, with an access
// log that tells how many requests and bytes reached it.
package nginx

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a running nginx.
type Server struct {
	cmd *exec.Cmd
	// Done receives the process's exit once it has ended (WaitHTTP puts
	// it back).
	Done chan error
	Dir  string
}

// Start runs nginx with its files under dir and the given text inside its
// http block; workers 0 means one per core.
func Start(bin, dir string, workers int, httpBlock string) (*Server, error) {
	if err := os.MkdirAll(filepath.Join(dir, "temp"), 0o755); err != nil {
		return nil, err
	}
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user root;\n" // workers as nobody could not read the scratch directory
	}
	w := "auto"
	if workers > 0 {
		w = fmt.Sprint(workers)
	}
	conf := fmt.Sprintf(`%sworker_processes %s;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events { worker_connections 4096; }
http {
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000;
	client_body_temp_path %[3]s/temp/body;
	proxy_temp_path %[3]s/temp/proxy;
	fastcgi_temp_path %[3]s/temp/fastcgi;
	uwsgi_temp_path %[3]s/temp/uwsgi;
	scgi_temp_path %[3]s/temp/scgi;
%[4]s}
`, userLine, w, dir, httpBlock)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &Server{Dir: dir, Done: make(chan error, 1)}
	errLog, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return nil, err
	}
	n.cmd = exec.Command(bin, "-p", dir, "-c", confPath, "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = errLog, errLog
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := n.cmd.Start(); err != nil {
		errLog.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { n.Done <- n.cmd.Wait(); errLog.Close() }()
	return n, nil
}

// PIDs are the master's and its workers'.
func (n *Server) PIDs() []int {
	out := []int{n.cmd.Process.Pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.cmd.Process.Pid, n.cmd.Process.Pid))
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Stop ends nginx gracefully (SIGQUIT), or with SIGKILL after 10 s.
func (n *Server) Stop() {
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.Done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.Done
	}
}

// FreeAddr returns a loopback address with a port nobody listens on now,
// below 32768: apt-cacher-ng 3.7 can neither listen on a port above 32767
// ("Error resolving address for binding") nor reach an upstream there
// (503 Connection refused), and the kernel hands out ports from 32768 up.
func FreeAddr() (string, error) {
	for range 100 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr, nil
	}
	return "", errors.New("no free loopback port between 20000 and 32000")
}

// WaitHTTP polls u until it answers (any status but 5xx), the process
// exits (a value on exited, which is put back) or limit passes.
func WaitHTTP(u string, exited chan error, limit time.Duration) error {
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

// LogFormat is the log_format directive of an AccessLog: put it in the
// http block, and "access_log PATH bench;" where the requests are to be
// counted.
const LogFormat = `log_format bench '$server_port $request_method $uri $status $body_bytes_sent';`

// AccessLog is the path of an access log in LogFormat.
type AccessLog string

// Mark returns the current end of the log, for Count and Totals.
func (l AccessLog) Mark() int64 {
	fi, err := os.Stat(string(l))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Count returns how many GETs of rel (a path without its leading slash)
// were logged since mark, how many requests of any path, and the body
// bytes the GETs of rel were sent.
func (l AccessLog) Count(since int64, rel string) (n, all int, bytes int64) {
	l.scan(since, func(method, uri string, status int, b int64) {
		all++
		if method == "GET" && uri == "/"+rel {
			n++
			bytes += b
		}
	})
	return n, all, bytes
}

// Totals returns how many requests were logged since mark, how many of
// them were answered with a status of 400 or above, and the body bytes
// of all of them.
func (l AccessLog) Totals(since int64) (requests, failed int, bytes int64) {
	l.scan(since, func(method, uri string, status int, b int64) {
		requests++
		if status >= 400 {
			failed++
		}
		bytes += b
	})
	return requests, failed, bytes
}

func (l AccessLog) scan(since int64, each func(method, uri string, status int, bytes int64)) {
	f, err := os.Open(string(l))
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(since, 0); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		status, _ := strconv.Atoi(fs[3])
		b, _ := strconv.ParseInt(fs[4], 10, 64)
		each(fs[1], fs[2], status, b)
	}
}
