package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/packyard/packyard/internal/format/deb/debtest"
	"github.com/packyard/packyard/internal/sign"
)

// The upstream is a signed APT repository, as a Debian mirror lays it out,
// built with apt-ftparchive and served by nginx:
//
//	dists/stable/InRelease, Release, Release.gpg   the pointer files (InRelease ≈ 3 KB)
//	dists/stable/COMP/binary-ARCH/Packages{,.gz}     the index files they name
//	pool/main/b/bench-big/bench-big_1.0-1_amd64.deb  the 20 MiB package
//
// nginx serves it twice: on a "fast" port at loopback speed, and on a
// "WAN" port with limit_rate, the upstream of the fan-in runs (a mirror on
// the internet, so that the download itself is what 64 clients wait for).

const (
	metaPath = "dists/stable/InRelease"
	pkgPath  = "pool/main/b/bench-big/bench-big_1.0-1_amd64.deb"
)

// upstreamLayout is the components and architectures of the tree; their
// Packages files make the Release, and so InRelease, about 3 KB, the size
// of a small distribution's (a Debian suite's is far larger).
var (
	upstreamComponents = []string{"main"}
	upstreamArches     = []string{"amd64", "arm64"}
)

// repoFiles is what the upstream serves that the benchmark reads.
type repoFiles struct {
	meta, pkg []byte
}

// buildUpstream writes the repository under root and returns the bytes of
// InRelease and of the package.
func buildUpstream(root string, pkgSize int64, seed uint64) (*repoFiles, error) {
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	payload := make([]byte, pkgSize)
	r := rand.New(rand.NewPCG(seed, 0x70726f7879))
	for i := 0; i+8 <= len(payload); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			payload[i+j] = byte(v >> (8 * j))
		}
	}
	deb, err := debtest.Build(debtest.Spec{
		Package: "bench-big", Version: "1.0-1", Architecture: "amd64",
		Maintainer:  "Bench <bench@example.org>",
		Description: "proxy benchmark package\nRandom payload, so that nothing on the way compresses it.",
		Section:     "misc", Priority: "optional", InstalledSize: int(pkgSize >> 10),
		Files:       []debtest.File{{Path: "/usr/share/bench-big/payload.bin", Body: payload}},
		Compression: "none",
	})
	if err != nil {
		return nil, fmt.Errorf("build the package: %w", err)
	}
	if err := writeFile(filepath.Join(root, filepath.FromSlash(pkgPath)), deb); err != nil {
		return nil, err
	}
	packages, err := runIn(root, "apt-ftparchive", "packages", "pool/main")
	if err != nil {
		return nil, err
	}
	for _, comp := range upstreamComponents {
		for _, arch := range upstreamArches {
			var body []byte
			if comp == "main" && arch == "amd64" {
				body = packages
			}
			dir := filepath.Join(root, "dists", "stable", comp, "binary-"+arch)
			if err := writeFile(filepath.Join(dir, "Packages"), body); err != nil {
				return nil, err
			}
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
			_, _ = zw.Write(body)
			_ = zw.Close()
			if err := writeFile(filepath.Join(dir, "Packages.gz"), gz.Bytes()); err != nil {
				return nil, err
			}
		}
	}
	rel, err := runIn(root, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Origin=bench", "-o", "APT::FTPArchive::Release::Label=bench",
		"-o", "APT::FTPArchive::Release::Description=Synthetic archive of the packyard proxy benchmark: one component, two architectures and one large package, signed, laid out as a Debian mirror lays it out",
		"-o", "APT::FTPArchive::Release::Suite=stable", "-o", "APT::FTPArchive::Release::Codename=stable",
		"-o", "APT::FTPArchive::Release::Components="+strings.Join(upstreamComponents, " "),
		"-o", "APT::FTPArchive::Release::Architectures="+strings.Join(upstreamArches, " "),
		"release", "dists/stable")
	if err != nil {
		return nil, err
	}
	key, err := sign.Generate("Bench Archive", "archive@example.org", "", time.Now().Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	signer, err := sign.NewSigner(key)
	if err != nil {
		return nil, err
	}
	inRelease, err := signer.ClearSign(rel)
	if err != nil {
		return nil, err
	}
	det, err := signer.DetachArmored(rel)
	if err != nil {
		return nil, err
	}
	dist := filepath.Join(root, "dists", "stable")
	for name, b := range map[string][]byte{"Release": rel, "InRelease": inRelease, "Release.gpg": det} {
		if err := writeFile(filepath.Join(dist, name), b); err != nil {
			return nil, err
		}
	}
	return &repoFiles{meta: inRelease, pkg: deb}, nil
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// runIn runs a tool in dir with a plain C locale and returns its output.
func runIn(dir, prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// upstream is the nginx that serves the repository, with an access log
// that tells how many requests reached it.
type upstream struct {
	*nginx
	fast, wan string // base URLs, with a trailing slash
	log       string
}

// startUpstream serves root on two free ports: fast, and WAN limited to
// rate bytes per second per connection (nginx limit_rate syntax; "" or
// "0": no limit).
func startUpstream(bin, dir, root, rate string) (*upstream, error) {
	fast, err := freeAddr()
	if err != nil {
		return nil, err
	}
	wan, err := freeAddr()
	if err != nil {
		return nil, err
	}
	limit := ""
	if rate != "" && rate != "0" {
		limit = "limit_rate " + rate + ";"
	}
	u := &upstream{fast: "http://" + fast + "/", wan: "http://" + wan + "/", log: filepath.Join(dir, "access.log")}
	http := fmt.Sprintf(`
	log_format bench '$server_port $request_method $uri $status $body_bytes_sent';
	access_log %[1]s bench;
	server {
		listen %[2]s;
		root %[3]s;
	}
	server {
		listen %[4]s;
		root %[3]s;
		%[5]s
	}
`, u.log, fast, root, wan, limit)
	if u.nginx, err = startNginx(bin, dir, 1, http); err != nil {
		return nil, fmt.Errorf("upstream nginx: %w", err)
	}
	if err := waitHTTP(u.fast, u.done, 30*time.Second); err != nil {
		u.stop()
		return nil, fmt.Errorf("upstream nginx: %w (see %s)", err, dir)
	}
	return u, nil
}

// mark returns the current end of the access log, for count.
func (u *upstream) mark() int64 {
	fi, err := os.Stat(u.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// count returns how many GETs of rel the upstream logged since mark, and
// how many requests of any path.
func (u *upstream) count(since int64, rel string) (n, all int) {
	n, all, _ = u.countBytes(since, rel)
	return n, all
}

// countBytes is count with the body bytes the GETs of rel were sent.
func (u *upstream) countBytes(since int64, rel string) (n, all int, bytes int64) {
	f, err := os.Open(u.log)
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	if _, err := f.Seek(since, 0); err != nil {
		return 0, 0, 0
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		all++
		if fs[1] == "GET" && fs[2] == "/"+rel {
			n++
			b, _ := strconv.ParseInt(fs[4], 10, 64)
			bytes += b
		}
	}
	return n, all, bytes
}

// nginx is a running nginx.
type nginx struct {
	cmd  *exec.Cmd
	done chan error
	dir  string
}

// startNginx runs nginx with its files under dir and the given text inside
// its http block.
func startNginx(bin, dir string, workers int, httpBlock string) (*nginx, error) {
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
	n := &nginx{dir: dir, done: make(chan error, 1)}
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
	go func() { n.done <- n.cmd.Wait(); errLog.Close() }()
	return n, nil
}

// pids are the master's and its workers'.
func (n *nginx) pids() []int {
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

func (n *nginx) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}
