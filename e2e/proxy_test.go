package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/proxy"
	"github.com/packyard/packyard/internal/sign"
	"github.com/packyard/packyard/internal/testengine"
)

// rpmUpstream writes packages into root/Packages/ and (re)generates the
// repository's metadata with createrepo_c, as a distribution mirror has it.
func rpmUpstream(t *testing.T, root string, pkgs ...builtRPM) {
	t.Helper()
	requireTool(t, "createrepo_c")
	if err := os.MkdirAll(filepath.Join(root, "Packages"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if err := os.WriteFile(filepath.Join(root, "Packages", p.file), p.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, cleanEnv(), nil, "createrepo_c", "--quiet", root)
}

// debUpstream builds a signed APT repository in root with apt-ftparchive:
// pool/main/ holds the packages, dists/stable/ the Packages indexes and an
// InRelease, Release and Release.gpg signed by signer.
func debUpstream(t *testing.T, root string, signer *sign.Signer, pkgs ...debPkg) {
	t.Helper()
	requireTool(t, "apt-ftparchive")
	pool := filepath.Join(root, "pool", "main")
	bin := filepath.Join(root, "dists", "stable", "main", "binary-amd64")
	for _, d := range []string{pool, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pkgs {
		if err := os.WriteFile(filepath.Join(pool, p.file), p.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runIn(t, root, cleanEnv(), nil, "apt-ftparchive", "packages", "pool/main")
	if code != 0 {
		t.Fatalf("apt-ftparchive packages: %s", errOut)
	}
	writeFile(t, filepath.Join(bin, "Packages"), []byte(out))
	debRelease(t, root, signer)
}

// debRelease gzips root's Packages and writes its Release, InRelease and
// Release.gpg, signed by signer.
func debRelease(t *testing.T, root string, signer *sign.Signer) {
	t.Helper()
	for _, f := range []string{"Release", "InRelease", "Release.gpg"} {
		// apt-ftparchive would list an old Release in the new one.
		if err := os.Remove(filepath.Join(root, "dists", "stable", f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	mustRun(t, cleanEnv(), nil, "gzip", "-9kf", filepath.Join(root, "dists", "stable", "main", "binary-amd64", "Packages"))
	rel, errOut, code := runIn(t, root, cleanEnv(), nil, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Origin=upstream", "-o", "APT::FTPArchive::Release::Suite=stable",
		"-o", "APT::FTPArchive::Release::Codename=stable", "-o", "APT::FTPArchive::Release::Components=main",
		"-o", "APT::FTPArchive::Release::Architectures=amd64", "release", "dists/stable")
	if code != 0 {
		t.Fatalf("apt-ftparchive release: %s", errOut)
	}
	writeFile(t, filepath.Join(root, "dists", "stable", "Release"), []byte(rel))
	in, err := signer.ClearSign([]byte(rel))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "dists", "stable", "InRelease"), in)
	det, err := signer.DetachArmored([]byte(rel))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "dists", "stable", "Release.gpg"), det)
}

// archUpstream writes signed packages into root/x86_64/ and adds them to
// the database up.db with repo-add.
func archUpstream(t *testing.T, root string, pkgs ...archPkg) {
	t.Helper()
	requireTool(t, "repo-add")
	dir := filepath.Join(root, "x86_64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--quiet", filepath.Join(dir, "up.db.tar.gz")}
	for _, p := range pkgs {
		writeFile(t, filepath.Join(dir, p.file), p.data)
		writeFile(t, filepath.Join(dir, p.file+".sig"), p.sig)
		args = append(args, filepath.Join(dir, p.file))
	}
	mustRun(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "repo-add", args...)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// proxyGet fetches a file through a proxy repository and returns the
// status, body, headers and the transport error (an aborted download).
func proxyGet(s *server, path string, hdr ...string) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// metric returns the sum of a metric's samples whose labels contain all
// of match.
func metric(t *testing.T, s *server, name string, match ...string) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(string(s.get(t, "/metrics")), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(line, m)
		}
		if !ok {
			continue
		}
		var v float64
		f := strings.Fields(line)
		if _, err := fmt.Sscan(f[len(f)-1], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// TestProxyDNF: real dnf installs through a proxy of a createrepo_c
// repository served by nginx; a second, fresh dnf installs the same
// packages with no package request reaching the upstream; uploads to the
// proxy are refused.
func TestProxyDNF(t *testing.T) {
	t.Parallel()
	d := newDNFRoot(t)
	up := t.TempDir()
	tool := buildRPM(t, "proxy-tool", "1.0", pkgOpts{requires: nil})
	lib := buildRPM(t, "proxy-lib", "2.0", pkgOpts{})
	rpmUpstream(t, up, tool, lib)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "fedora", "--format", "rpm", "--kind", "proxy", "--upstream", ngx.URL+"/")

	d.run(t, fromPath("fedora", s.url+"/fedora/"), "install", "proxy-tool", "proxy-lib")
	d.requireInstalled(t, tool, lib)
	for _, p := range []builtRPM{tool, lib} {
		if n := ngx.Requests(t, "/Packages/"+p.file); n != 1 {
			t.Errorf("upstream requests for %s: %d, want 1", p.file, n)
		}
	}
	fast := metric(t, s, "packyard_http_fast_path_requests_total")
	d2 := newDNFRoot(t)
	d2.run(t, fromPath("fedora", s.url+"/fedora/"), "install", "proxy-tool", "proxy-lib")
	d2.requireInstalled(t, tool, lib)
	// The second dnf's requests for cached files took the fast path.
	if n := metric(t, s, "packyard_http_fast_path_requests_total") - fast; n < 1 {
		t.Errorf("fast path answers during the second install: %v, want some", n)
	}
	for _, p := range []builtRPM{tool, lib} {
		if n := ngx.Requests(t, "/Packages/"+p.file); n != 1 {
			t.Errorf("upstream requests for %s after a second install: %d, want 1 (served from the cache)", p.file, n)
		}
	}
	if hits := metric(t, s, "packyard_proxy_requests_total", `repo="fedora"`, `result="hit"`); hits < 2 {
		t.Errorf("packyard_proxy_requests_total hits = %v, want at least the two cached packages", hits)
	}

	// A proxy takes no uploads.
	code, _, _, err := s.putPackage("fedora", tool.file, bytes.NewReader(tool.data), int64(len(tool.data)), nil)
	if err != nil || code < 400 || code >= 500 {
		t.Errorf("upload to a proxy repository: %d %v, want a 4xx refusal", code, err)
	}
	// A proxy needs an upstream.
	if _, errOut, code := s.cli(t, "repo", "create", "noup", "--format", "rpm", "--kind", "proxy"); code == 0 || !strings.Contains(errOut, "upstream") {
		t.Errorf("proxy without upstream: exit %d, %s", code, errOut)
	}
}

// TestProxyAPT: real apt, trusting only the upstream's key (signed-by),
// updates and downloads through a passthrough proxy of an apt-ftparchive
// repository.
func TestProxyAPT(t *testing.T) {
	t.Parallel()
	a := newAptRoot(t)
	uk := newUpstreamKey(t, "Upstream Archive")
	key, signer := uk.key, uk.signer
	hello := buildDeb(t, "proxy-hello", "1.0-1", "amd64", nil)
	lib := buildDeb(t, "proxy-libhello", "2.0-1", "amd64", nil)
	up := t.TempDir()
	debUpstream(t, up, signer, hello, lib)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "debian", "--format", "deb", "--kind", "proxy", "--upstream", ngx.URL)

	pub, err := key.BinaryPublic()
	if err != nil {
		t.Fatal(err)
	}
	kp := a.key(t, "upstream", pub)
	a.source(t, "proxy.list", "deb [signed-by="+kp+"] "+s.url+"/debian/ stable main\n")
	a.mustUpdate(t)
	out, errOut, code := a.apt(t, "", "apt-get", "install", "-s", "-y", "proxy-hello", "proxy-libhello")
	if code != 0 || !strings.Contains(out, "Inst proxy-hello") {
		t.Fatalf("apt-get install -s: exit %d\n%s\n%s", code, out, errOut)
	}
	a.download(t, hello)
	a.download(t, lib)
	// The Packages index came with InRelease, once.
	if n := ngx.Requests(t, "/dists/stable/InRelease"); n != 1 {
		t.Errorf("upstream InRelease requests: %d, want 1", n)
	}
	// A second root downloads again, from the cache.
	b := newAptRoot(t)
	b.key(t, "upstream", pub)
	b.source(t, "proxy.list", "deb [signed-by="+filepath.Join(b.dir, "keys", "upstream.gpg")+"] "+s.url+"/debian/ stable main\n")
	fast := metric(t, s, "packyard_http_fast_path_requests_total")
	b.mustUpdate(t)
	b.download(t, hello)
	// apt's requests for cached files took the fast path.
	if n := metric(t, s, "packyard_http_fast_path_requests_total") - fast; n < 1 {
		t.Errorf("fast path answers during the second root's update: %v, want some", n)
	}
	if n := ngx.Requests(t, "/pool/main/"+hello.file); n != 1 {
		t.Errorf("upstream requests for %s: %d, want 1", hello.file, n)
	}
}

// TestProxyPacman: real pacman, requiring package signatures by a trusted
// packager key, syncs and installs through a proxy of a repo-add
// repository.
func TestProxyPacman(t *testing.T) {
	t.Parallel()
	p := newPacmanRoot(t)
	pk := newUpstreamKey(t, "Upstream Packager")
	packager, pkSigner := pk.key, pk.signer
	tool := buildArch(t, pkSigner, "proxy-tool", "1.0-1", "x86_64")
	up := t.TempDir()
	archUpstream(t, up, tool)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "archlinux", "--format", "arch", "--kind", "proxy", "--upstream", ngx.URL)
	pkPub, err := packager.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	p.trust(t, pkPub, packager.Fingerprint())
	p.configure(t, "[up]\nSigLevel = PackageRequired DatabaseOptional\nServer = "+s.url+"/archlinux/$arch\n")
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", "proxy-tool")
	if out := p.mustPacman(t, "-Q", "proxy-tool"); out != "proxy-tool 1.0-1\n" {
		t.Fatalf("pacman -Q: %q", out)
	}
	if _, err := os.Stat(filepath.Join(p.root, "usr/share/doc/proxy-tool/README")); err != nil {
		t.Errorf("installed file: %v", err)
	}
	if n := ngx.Requests(t, "/x86_64/"+tool.file); n != 1 {
		t.Errorf("upstream requests for %s: %d, want 1", tool.file, n)
	}
}

// TestProxyFanIn: 64 concurrent requests for the same uncached 20 MiB
// package make exactly one upstream request, and all 64 bodies are the
// package.
func TestProxyFanIn(t *testing.T) {
	t.Parallel()
	up := t.TempDir()
	big := buildRPM(t, "proxy-big", "1.0", pkgOpts{payload: 20 << 20})
	rpmUpstream(t, up, big)
	// 20 MiB at 16 MB/s: the download is in flight for over a second.
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{LimitRate: "16m"})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "proxy", "--upstream", ngx.URL)
	s.get(t, "/el/repodata/repomd.xml") // the package's digest, from primary.xml

	const clients = 64
	var wg sync.WaitGroup
	type result struct {
		code int
		sum  string // sha256 of the body, hashed as it arrives
		n    int64
		hdr  http.Header
		err  error
	}
	results := make([]result, clients)
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := s.http.Get(s.url + "/el/Packages/" + big.file)
			if err != nil {
				results[i] = result{err: err}
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			results[i] = result{resp.StatusCode, hex.EncodeToString(h.Sum(nil)), n, resp.Header, err}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	coalesced := 0
	for i, r := range results {
		if r.err != nil || r.code != http.StatusOK {
			t.Fatalf("client %d: %d %v", i, r.code, r.err)
		}
		if r.sum != big.sha256 || r.n != int64(len(big.data)) {
			t.Fatalf("client %d: %d bytes (sha256 %s) that differ from the package's %d (%s)", i, r.n, r.sum, len(big.data), big.sha256)
		}
		if r.hdr.Get(proxy.HeaderCache) == "coalesced" {
			coalesced++
		}
	}
	if n := ngx.Requests(t, "/Packages/"+big.file); n != 1 {
		t.Fatalf("upstream requests for the package: %d, want exactly 1", n)
	}
	if coalesced != clients-1 {
		t.Errorf("%d responses coalesced, want %d", coalesced, clients-1)
	}
	if c := metric(t, s, "packyard_proxy_requests_total", `result="coalesced"`); c != clients-1 {
		t.Errorf("coalesced metric = %v, want %d", c, clients-1)
	}
	// For comparison: one client downloading the file from nginx itself.
	t1 := time.Now()
	resp, err := http.Get(ngx.URL + "/Packages/" + big.file)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(len(big.data)) {
		t.Fatalf("direct download: %d bytes, %v", n, err)
	}
	single := time.Since(t1)
	t.Logf("64 clients through the proxy, one 20 MiB upstream download at 16 MB/s: %v; one client straight from nginx: %v (%.2fx)",
		elapsed.Round(time.Millisecond), single.Round(time.Millisecond), elapsed.Seconds()/single.Seconds())
}

// TestProxyUpstreamKilled: nginx killed in the middle of a download: the
// waiting clients see an error, nothing is cached, and once nginx is back
// the next request fetches again and succeeds.
func TestProxyUpstreamKilled(t *testing.T) {
	t.Parallel()
	up := t.TempDir()
	pkg := buildRPM(t, "proxy-cut", "1.0", pkgOpts{payload: 4 << 20})
	rpmUpstream(t, up, pkg)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{LimitRate: "1m"})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "proxy", "--upstream", ngx.URL, "--upstream-timeout", "10s")
	s.get(t, "/el/repodata/repomd.xml")

	const clients = 4
	type result struct {
		n   int
		err error
	}
	got := make(chan result, clients)
	first := make(chan struct{}, clients)
	for range clients {
		go func() {
			resp, err := s.http.Get(s.url + "/el/Packages/" + pkg.file)
			if err != nil {
				got <- result{0, err}
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 64<<10)
			n, err := io.ReadAtLeast(resp.Body, buf, 1)
			first <- struct{}{}
			if err != nil {
				got <- result{n, err}
				return
			}
			m, err := io.Copy(io.Discard, resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s", resp.Status)
			}
			got <- result{n + int(m), err}
		}()
	}
	// Every client has bytes of the download in flight.
	for range clients {
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			t.Fatal("the clients received no bytes")
		}
	}
	ngx.Kill(t)
	for range clients {
		r := <-got
		if r.err == nil {
			t.Fatalf("a client took %d bytes of a cut %d-byte download as a complete response", r.n, len(pkg.data))
		}
	}
	// Nothing cached: a cache-only request (as a peer sends) finds nothing.
	if code, _, _, _ := proxyGet(s, "/el/Packages/"+pkg.file, proxy.HeaderCacheOnly, "1"); code != http.StatusNotFound {
		t.Fatalf("cache-only request after the failed download: %d, want 404", code)
	}
	ngx.Start(t)
	code, b, h, err := proxyGet(s, "/el/Packages/"+pkg.file)
	if err != nil || code != http.StatusOK || !bytes.Equal(b, pkg.data) {
		t.Fatalf("after nginx is back: %d %v, %d bytes (want %d)", code, err, len(b), len(pkg.data))
	}
	if h.Get(proxy.HeaderCache) != "miss" {
		t.Errorf("after nginx is back: %s %q, want miss", proxy.HeaderCache, h.Get(proxy.HeaderCache))
	}
	if n := ngx.Requests(t, "/Packages/"+pkg.file); n != 1 {
		// The access log of the killed nginx may or may not hold the cut
		// request; the new one must be there.
		if n != 2 {
			t.Errorf("upstream requests for the package: %d", n)
		}
	}
	if e := metric(t, s, "packyard_proxy_upstream_errors_total", `repo="el"`); e < 1 {
		t.Errorf("packyard_proxy_upstream_errors_total = %v, want the cut download counted", e)
	}
}

// TestProxyUpstreamDown: with the upstream stopped, cached metadata and
// packages keep being served (marked stale) and a fresh dnf still
// installs; a package that was never cached gets a clear 502/504.
func TestProxyUpstreamDown(t *testing.T) {
	t.Parallel()
	up := t.TempDir()
	cached := buildRPM(t, "proxy-cached", "1.0", pkgOpts{})
	never := buildRPM(t, "proxy-never", "1.0", pkgOpts{})
	rpmUpstream(t, up, cached, never)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "proxy", "--upstream", ngx.URL, "--max-age", "1s")
	d := newDNFRoot(t)
	d.run(t, fromPath("el", s.url+"/el/"), "install", "proxy-cached")
	d.requireInstalled(t, cached)

	ngx.Kill(t)
	time.Sleep(1100 * time.Millisecond) // past max-age: repomd.xml must be revalidated
	code, _, h, err := proxyGet(s, "/el/repodata/repomd.xml")
	if err != nil || code != http.StatusOK || h.Get(proxy.HeaderCache) != "stale" {
		t.Fatalf("repomd.xml with the upstream down: %d %v %s=%q, want 200 stale", code, err, proxy.HeaderCache, h.Get(proxy.HeaderCache))
	}
	d2 := newDNFRoot(t)
	d2.run(t, fromPath("el", s.url+"/el/"), "install", "proxy-cached")
	d2.requireInstalled(t, cached)

	code, b, _, err := proxyGet(s, "/el/Packages/"+never.file)
	if err != nil || (code != http.StatusBadGateway && code != http.StatusGatewayTimeout) || !strings.Contains(string(b), "not cached") {
		t.Fatalf("uncached package with the upstream down: %d %v %s, want 502/504 saying it is not cached", code, err, b)
	}
	if st := metric(t, s, "packyard_proxy_stale_total", `repo="el"`); st < 1 {
		t.Errorf("packyard_proxy_stale_total = %v, want the stale serves counted", st)
	}
}

// TestProxyPeers: node B lists node A as a peer; a package A has cached is
// served by B with no request reaching the upstream, and a peer asked for
// a file it does not hold answers 404 without fetching it.
func TestProxyPeers(t *testing.T) {
	t.Parallel()
	up := t.TempDir()
	pkg := buildRPM(t, "proxy-shared", "1.0", pkgOpts{payload: 1 << 20})
	other := buildRPM(t, "proxy-other", "1.0", pkgOpts{})
	rpmUpstream(t, up, pkg, other)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	a := startServer(t, t.TempDir())
	b := startServer(t, t.TempDir())
	a.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "proxy", "--upstream", ngx.URL, "--peer", b.url)
	b.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "proxy", "--upstream", ngx.URL, "--peer", a.url)

	if got := a.get(t, "/el/Packages/"+pkg.file); !bytes.Equal(got, pkg.data) {
		t.Fatal("A served other bytes")
	}
	if n := ngx.Requests(t, "/Packages/"+pkg.file); n != 1 {
		t.Fatalf("upstream requests after A: %d, want 1", n)
	}
	if got := b.get(t, "/el/Packages/"+pkg.file); !bytes.Equal(got, pkg.data) {
		t.Fatal("B served other bytes")
	}
	if n := ngx.Requests(t, "/Packages/"+pkg.file); n != 1 {
		t.Fatalf("upstream requests after B: %d, want still 1 (B must get it from A)", n)
	}
	if pb := metric(t, b, "packyard_proxy_bytes_total", `repo="el"`, `kind="peer"`); pb != float64(len(pkg.data)) {
		t.Errorf("B's bytes from peers = %v, want %d", pb, len(pkg.data))
	}
	// B now holds it too: served as a hit.
	if _, _, h, _ := proxyGet(b, "/el/Packages/"+pkg.file); h.Get(proxy.HeaderCache) != "hit" {
		t.Errorf("B's second answer: %q, want hit", h.Get(proxy.HeaderCache))
	}
	// A cache-only request never fetches: no loop between A and B.
	if code, _, _, _ := proxyGet(a, "/el/Packages/"+other.file, proxy.HeaderCacheOnly, "1"); code != http.StatusNotFound {
		t.Errorf("cache-only request for an uncached file: %d, want 404", code)
	}
	if n := ngx.Requests(t, "/Packages/"+other.file); n != 0 {
		t.Errorf("a cache-only request reached the upstream %d times", n)
	}
	// An uncached file on B: A is asked (404), then the upstream, once.
	if got := b.get(t, "/el/Packages/"+other.file); !bytes.Equal(got, other.data) {
		t.Fatal("B served other bytes for proxy-other")
	}
	if n := ngx.Requests(t, "/Packages/"+other.file); n != 1 {
		t.Errorf("upstream requests for proxy-other: %d, want 1", n)
	}
}

// TestProxyUnion: in union mode a package that was cached and then pruned
// upstream (metadata regenerated without it) stays installable through the
// proxy, with dnf checking the signature of the merged repomd.xml against
// the proxy repository's key.
func TestProxyUnion(t *testing.T) {
	t.Parallel()
	up := t.TempDir()
	kept := buildRPM(t, "proxy-kept", "1.0", pkgOpts{})
	pruned := buildRPM(t, "proxy-pruned", "1.0", pkgOpts{})
	rpmUpstream(t, up, kept, pruned)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "proxy", "--mode", "union",
		"--upstream", ngx.URL, "--max-age", "1s")
	if info := s.repoInfo(t, "el"); len(info.Signing) != 1 {
		t.Fatalf("union repository signing = %+v, want the default key", info.Signing)
	}
	d := newDNFRoot(t)
	writeRepoFile(t, s, d, "el", "")
	if out, errOut, code := d.runSigned(t, nil, "--enablerepo=el", "install", "proxy-pruned"); code != 0 {
		t.Fatalf("dnf install through the union proxy: exit %d\n%s\n%s", code, out, errOut)
	}
	d.requireInstalled(t, pruned)

	// The upstream prunes the package and regenerates its metadata.
	if err := os.Remove(filepath.Join(up, "Packages", pruned.file)); err != nil {
		t.Fatal(err)
	}
	rpmUpstream(t, up)
	if code := ngx.Get(t, "/Packages/"+pruned.file); code != http.StatusNotFound {
		t.Fatalf("the upstream still serves the pruned package: %d", code)
	}
	time.Sleep(1100 * time.Millisecond) // past max-age
	before := ngx.Requests(t, "/repodata/repomd.xml")

	d2 := newDNFRoot(t)
	writeRepoFile(t, s, d2, "el", "")
	if out, errOut, code := d2.runSigned(t, nil, "--enablerepo=el", "install", "proxy-pruned", "proxy-kept"); code != 0 {
		t.Fatalf("dnf install of a package pruned upstream: exit %d\n%s\n%s", code, out, errOut)
	}
	d2.requireInstalled(t, pruned, kept)
	if ngx.Requests(t, "/repodata/repomd.xml") <= before {
		t.Errorf("the upstream's new repomd.xml was never fetched")
	}
	// The merged primary names both; the upstream's only one.
	md := fetchRepomd(t, s, "el")
	names := map[string]bool{}
	for _, p := range parsePrimary(t, fetchData(t, s, "el", md.data(t, "primary"))) {
		names[p.Name] = true
	}
	if !names["proxy-pruned"] || !names["proxy-kept"] {
		t.Errorf("merged primary names %v, want proxy-pruned and proxy-kept", names)
	}
}

// TestProxyUnionAPTRefusesBadUpstream: an upstream Packages index with a
// stanza past the bound cannot be merged: InRelease answers 502 saying
// why, and no merged file, signature or key is recorded.
func TestProxyUnionAPTRefusesBadUpstream(t *testing.T) {
	t.Parallel()
	uk := newUpstreamKey(t, "Upstream Archive")
	up := t.TempDir()
	debUpstream(t, up, uk.signer, buildDeb(t, "union-ok", "1.0-1", "amd64", nil))
	pk := filepath.Join(up, "dists", "stable", "main", "binary-amd64", "Packages")
	b, err := os.ReadFile(pk)
	if err != nil {
		t.Fatal(err)
	}
	huge := "Package: huge\nVersion: 1\nArchitecture: amd64\nDescription: " + strings.Repeat("x", 2<<20) + "\n\n"
	writeFile(t, pk, append(b, huge...))
	debRelease(t, up, uk.signer)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "debian", "--format", "deb", "--kind", "proxy", "--mode", "union", "--upstream", ngx.URL)
	resp, body, err := s.do(http.MethodGet, "/debian/dists/stable/InRelease", nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "stanza line is longer than") {
		t.Fatalf("InRelease of a union over a bad upstream: %s %s, want 502 saying the stanza is too large", resp.Status, body)
	}
	for _, p := range []string{"/debian/key.gpg", "/debian/dists/stable/Release.gpg"} {
		if resp, _, err := s.do(http.MethodGet, p, nil, 0, nil); err != nil || resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s after a failed union build: %v %v", p, resp.Status, err)
		}
	}
}

// TestProxyUnionPacman: real pacman, requiring signed databases (packyard's
// key) and signed packages (the upstream packager's), installs through a
// union pacman proxy; the upstream removes a package from its database
// and pool: a fresh pacman still finds it in the proxy's database, with
// its signature, and installs it from the cache.
func TestProxyUnionPacman(t *testing.T) {
	t.Parallel()
	pk := newUpstreamKey(t, "Upstream Packager")
	packager, pkSigner := pk.key, pk.signer
	kept := buildArch(t, pkSigner, "union-tool", "1.0-1", "x86_64")
	gone := buildArch(t, pkSigner, "union-gone", "2.0-1", "x86_64")
	up := t.TempDir()
	archUpstream(t, up, kept, gone)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "archlinux", "--format", "arch", "--kind", "proxy", "--mode", "union",
		"--upstream", ngx.URL, "--max-age", "1s")
	pkPub, err := packager.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	s.get(t, "/archlinux/x86_64/up.db")
	info := s.repoInfo(t, "archlinux")
	if len(info.Signing) != 1 {
		t.Fatalf("union repository signing = %+v", info.Signing)
	}
	pacmanRoot := func() *pacmanRoot {
		p := newPacmanRoot(t)
		p.trust(t, s.get(t, "/archlinux/key.asc"), info.Signing[0].Fingerprint)
		p.trust(t, pkPub, packager.Fingerprint())
		p.configure(t, "[up]\nSigLevel = Required\nServer = "+s.url+"/archlinux/$arch\n")
		return p
	}
	p := pacmanRoot()
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", "union-gone")

	// The upstream drops the package: file and database entry.
	if err := os.Remove(filepath.Join(up, "x86_64", gone.file)); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(up, "x86_64", gone.file+".sig"))
	mustRun(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "repo-remove", "--quiet", filepath.Join(up, "x86_64", "up.db.tar.gz"), "union-gone")
	if code := ngx.Get(t, "/x86_64/"+gone.file); code != http.StatusNotFound {
		t.Fatalf("the upstream still serves the removed package: %d", code)
	}
	time.Sleep(1100 * time.Millisecond) // past max-age
	before := ngx.Requests(t, "/x86_64/up.db")
	q := pacmanRoot()
	q.mustPacman(t, "-Sy")
	if ngx.Requests(t, "/x86_64/up.db") <= before {
		t.Error("the upstream's new database was never fetched")
	}
	q.mustPacman(t, "-S", "union-gone", "union-tool")
	if out := q.mustPacman(t, "-Q", "union-gone"); out != "union-gone 2.0-1\n" {
		t.Fatalf("pacman -Q: %q", out)
	}
	// The proxy's database keeps the package's entry with the signature
	// the upstream's database gave it.
	descs := archDBDescs(t, s.get(t, "/archlinux/x86_64/up.db"))
	d, ok := descs["union-gone-2.0-1"]
	if !ok || !strings.Contains(d, "%PGPSIG%\n") || !strings.Contains(d, "%FILENAME%\n"+gone.file+"\n") {
		t.Errorf("union database entry of union-gone: %q (entries: %d)", d, len(descs))
	}
	if _, ok := descs["union-tool-1.0-1"]; !ok {
		t.Errorf("union database lacks the upstream's union-tool")
	}
}

// archDBDescs returns the desc files of a gzip pacman database, by entry
// directory.
func archDBDescs(t *testing.T, db []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(db))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if path.Base(hdr.Name) == "desc" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[path.Dir(hdr.Name)] = string(b)
		}
	}
}

// TestProxyUnionAPT: real apt, trusting only packyard's key, installs
// through a union deb proxy; the upstream prunes a package (pool file
// removed, indexes regenerated and signed again): a fresh apt still finds
// it in the proxy's Packages and downloads it from the cache, next to the
// upstream's current packages.
func TestProxyUnionAPT(t *testing.T) {
	t.Parallel()
	uk := newUpstreamKey(t, "Upstream Archive")
	key, signer := uk.key, uk.signer
	kept := buildDeb(t, "union-kept", "1.0-1", "amd64", nil)
	pruned := buildDeb(t, "union-pruned", "1.0-1", "all", nil)
	up := t.TempDir()
	debUpstream(t, up, signer, kept, pruned)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "debian", "--format", "deb", "--kind", "proxy", "--mode", "union",
		"--upstream", ngx.URL, "--max-age", "1s")
	// The merged distribution is signed by packyard's key, served beside it.
	s.get(t, "/debian/dists/stable/InRelease")
	pk := s.get(t, "/debian/key.gpg")
	a := newAptRoot(t)
	a.source(t, "union.list", "deb [signed-by="+a.key(t, "packyard", pk)+"] "+s.url+"/debian/ stable main\n")
	a.mustUpdate(t)
	a.download(t, pruned)

	// The upstream prunes the package.
	if err := os.Remove(filepath.Join(up, "pool", "main", pruned.file)); err != nil {
		t.Fatal(err)
	}
	debUpstream(t, up, signer, kept)
	if code := ngx.Get(t, "/pool/main/"+pruned.file); code != http.StatusNotFound {
		t.Fatalf("the upstream still serves the pruned package: %d", code)
	}
	time.Sleep(1100 * time.Millisecond) // past max-age
	before := ngx.Requests(t, "/dists/stable/InRelease")
	b := newAptRoot(t)
	b.source(t, "union.list", "deb [signed-by="+b.key(t, "packyard", pk)+"] "+s.url+"/debian/ stable main\n")
	b.mustUpdate(t)
	if ngx.Requests(t, "/dists/stable/InRelease") <= before {
		t.Error("the upstream's new InRelease was never fetched")
	}
	out, errOut, code := b.apt(t, "", "apt-get", "install", "-s", "-y", "union-pruned", "union-kept")
	if code != 0 || !strings.Contains(out, "Inst union-pruned") || !strings.Contains(out, "Inst union-kept") {
		t.Fatalf("apt-get install -s of a package pruned upstream: exit %d\n%s\n%s", code, out, errOut)
	}
	b.download(t, pruned)
	b.download(t, kept)
	// The proxy's Packages names both, the upstream's only one; an apt
	// trusting only the upstream's key refuses the re-signed metadata.
	merged := string(s.get(t, "/debian/dists/stable/main/binary-amd64/Packages"))
	if !strings.Contains(merged, "Package: union-pruned\n") || !strings.Contains(merged, "Package: union-kept\n") {
		t.Errorf("merged Packages:\n%s", merged)
	}
	if code := ngx.Get(t, "/dists/stable/main/binary-amd64/Packages"); code != http.StatusOK {
		t.Fatalf("upstream Packages: %d", code)
	}
	pub, err := key.BinaryPublic()
	if err != nil {
		t.Fatal(err)
	}
	c := newAptRoot(t)
	c.source(t, "union.list", "deb [signed-by="+c.key(t, "upstream", pub)+"] "+s.url+"/debian/ stable main\n")
	if _, errOut, code := c.apt(t, "", "apt-get", "update"); code == 0 && !strings.Contains(errOut, "NO_PUBKEY") && !strings.Contains(errOut, "not signed") {
		t.Errorf("apt trusting only the upstream key accepted the union's metadata: %s", errOut)
	}
}
