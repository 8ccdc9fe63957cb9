package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format/deb/debtest"
)

// aptRoot is an isolated apt configuration: its own sources, state, cache,
// dpkg status and trusted keys (none: only signed-by), so the host's apt
// is neither read nor changed.
type aptRoot struct {
	dir  string
	opts []string
}

func newAptRoot(t *testing.T) *aptRoot {
	t.Helper()
	requireTool(t, "apt-get")
	dir := t.TempDir()
	for _, d := range []string{"sources.list.d", "trusted.gpg.d", "preferences.d", "state/lists/partial", "cache/archives/partial", "keys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "sources.list"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := &aptRoot{dir: dir}
	a.opts = []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "sources.list.d"),
		"-o", "Dir::Etc::Trusted=" + filepath.Join(dir, "trusted.gpg"),
		"-o", "Dir::Etc::TrustedParts=" + filepath.Join(dir, "trusted.gpg.d"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(dir, "preferences.d"),
		"-o", "Dir::State=" + filepath.Join(dir, "state"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Debug::NoLocking=1",
		"-o", "APT::Architecture=amd64",
		"-o", "APT::Architectures=amd64",
		"-o", "APT::Sandbox::User=root",
		"-o", "Acquire::Languages=none",
		"-o", "Acquire::http::No-Cache=true",
	}
	return a
}

// key writes a repository key (binary, as signed-by takes it) into the
// root and returns its path.
func (a *aptRoot) key(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(a.dir, "keys", name+".gpg")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// source installs a sources file: name ends in .list or .sources.
func (a *aptRoot) source(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(a.dir, "sources.list.d", name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// apt runs apt-get (or another apt tool) with the root's options.
func (a *aptRoot) apt(t *testing.T, dir, tool string, args ...string) (string, string, int) {
	t.Helper()
	full := append(append([]string{}, a.opts...), args...)
	return runIn(t, dir, cleanEnv("LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"), nil, tool, full...)
}

// mustUpdate runs apt-get update and fails on any error or warning.
func (a *aptRoot) mustUpdate(t *testing.T) {
	t.Helper()
	out, errOut, code := a.apt(t, "", "apt-get", "update")
	if code != 0 || strings.Contains(errOut, "W:") || strings.Contains(errOut, "E:") {
		t.Fatalf("apt-get update: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// debPkg is a built .deb.
type debPkg struct {
	spec debtest.Spec
	file string
	data []byte
}

func buildDeb(t testing.TB, name, version, arch string, mod func(*debtest.Spec)) debPkg {
	t.Helper()
	s := debtest.Spec{
		Package: name, Version: version, Architecture: arch,
		Maintainer:  "Packyard Tests <tests@example.com>",
		Description: name + " test package\nBuilt by the packyard end-to-end tests.",
		Section:     "misc", Priority: "optional", Compression: "xz",
		Files:   []debtest.File{{Path: "./usr/share/doc/" + name + "/README", Body: []byte(name + " " + version + "\n"), Mode: 0o644}},
		ModTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if mod != nil {
		mod(&s)
	}
	data, err := debtest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	v := version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return debPkg{spec: s, file: name + "_" + v + "_" + arch + ".deb", data: data}
}

// putDeb uploads a .deb into a distribution and component.
func (s *server) putDeb(t *testing.T, repo, dist, comp string, p debPkg) (int, []byte) {
	t.Helper()
	path := "/api/v1/repos/" + url.PathEscape(repo) + "/packages/" + url.PathEscape(p.file) +
		"?distribution=" + url.QueryEscape(dist) + "&component=" + url.QueryEscape(comp)
	resp, b, err := s.do(http.MethodPut, path, bytes.NewReader(p.data), int64(len(p.data)), nil)
	if err != nil {
		t.Fatalf("PUT %s: %v", p.file, err)
	}
	return resp.StatusCode, b
}

func (s *server) mustPutDeb(t *testing.T, repo, dist, comp string, p debPkg) {
	t.Helper()
	if code, b := s.putDeb(t, repo, dist, comp, p); code != http.StatusCreated {
		t.Fatalf("PUT %s into %s/%s: %d %s", p.file, dist, comp, code, b)
	}
}

// aptDownload downloads a package with apt-get download and checks that
// the bytes are the uploaded ones (apt itself checks them against the
// signed Packages index).
func (a *aptRoot) download(t *testing.T, p debPkg) {
	t.Helper()
	dir := t.TempDir()
	out, errOut, code := a.apt(t, dir, "apt-get", "download", p.spec.Package+"="+p.spec.Version)
	if code != 0 {
		t.Fatalf("apt-get download %s=%s: exit %d\n%s\n%s", p.spec.Package, p.spec.Version, code, out, errOut)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("apt-get download left %d files, want 1", len(ents))
	}
	got, err := os.ReadFile(filepath.Join(dir, ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p.data) {
		t.Fatalf("apt-get download %s: bytes differ from the upload", p.file)
	}
}

// TestAPT: a signed APT repository that real apt verifies (InRelease,
// signed-by only) and installs from, in several distributions and
// components, with a newer version seen at the next update with no wait,
// the served .sources and .list files, and a tampered Release refused.
func TestAPT(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	const repo = "apt"
	s.mustCLI(t, "repo", "create", repo, "--format", "deb")

	hello := buildDeb(t, "hello-e2e", "1.0-1", "amd64", func(sp *debtest.Spec) { sp.Depends = "libe2e (>= 1.0)" })
	lib := buildDeb(t, "libe2e", "1.2-1", "amd64", func(sp *debtest.Spec) { sp.Source = "e2e-libs" })
	doc := buildDeb(t, "e2e-doc", "2:0.5", "all", nil)
	extra := buildDeb(t, "e2e-extra", "3.0-1", "arm64", nil)
	s.mustPutDeb(t, repo, "bookworm", "main", hello)
	s.mustPutDeb(t, repo, "bookworm", "main", lib)
	s.mustPutDeb(t, repo, "bookworm", "contrib", doc)
	s.mustPutDeb(t, repo, "trixie", "main", extra)
	// The same file in a second distribution shares its pool file.
	s.mustPutDeb(t, repo, "trixie", "main", lib)
	// Identical again: 200; other bytes under the same identity: 409.
	if code, b := s.putDeb(t, repo, "bookworm", "main", lib); code != http.StatusOK {
		t.Errorf("identical re-upload: %d %s, want 200", code, b)
	}
	other := buildDeb(t, "libe2e", "1.2-1", "amd64", func(sp *debtest.Spec) { sp.Description = "other bytes\nsame version" })
	if code, b := s.putDeb(t, repo, "bookworm", "main", other); code != http.StatusConflict {
		t.Errorf("other bytes, same identity: %d %s, want 409", code, b)
	}
	// push with --distribution and --component.
	pushed := buildDeb(t, "e2e-pushed", "1.0", "amd64", nil)
	f := filepath.Join(t.TempDir(), pushed.file)
	if err := os.WriteFile(f, pushed.data, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "push", repo, "--distribution", "bookworm", "--component", "main", f)

	a := newAptRoot(t)
	keyPath := a.key(t, repo, s.get(t, "/"+repo+"/key.gpg"))
	list := string(s.get(t, "/"+repo+"/"+repo+".list"))
	for _, want := range []string{
		"deb [signed-by=/etc/apt/keyrings/apt.gpg] " + s.url + "/apt/ bookworm contrib main\n",
		"deb [signed-by=/etc/apt/keyrings/apt.gpg] " + s.url + "/apt/ trixie main\n",
	} {
		if !strings.Contains(list, want) {
			t.Fatalf("%s.list lacks %q:\n%s", repo, want, list)
		}
	}
	a.source(t, repo+".list", strings.ReplaceAll(list, "/etc/apt/keyrings/apt.gpg", keyPath))
	a.mustUpdate(t)
	for _, p := range []debPkg{hello, lib, doc, pushed} {
		a.download(t, p)
	}
	// Dependencies resolve across components: a simulated install.
	out, errOut, code := a.apt(t, "", "apt-get", "install", "-s", "-y", hello.spec.Package, doc.spec.Package)
	if code != 0 || !strings.Contains(out, "Inst libe2e (1.2-1") || !strings.Contains(out, "Inst hello-e2e (1.0-1") {
		t.Fatalf("apt-get install -s: exit %d\n%s\n%s", code, out, errOut)
	}
	// The trixie distribution, through the deb822 .sources file.
	b := newAptRoot(t)
	bKey := b.key(t, repo, s.get(t, "/"+repo+"/key.gpg"))
	sources := string(s.get(t, "/"+repo+"/"+repo+".sources?distribution=trixie"))
	if !strings.Contains(sources, "Suites: trixie\nComponents: main\nSigned-By: /etc/apt/keyrings/apt.gpg\n") {
		t.Fatalf("%s.sources:\n%s", repo, sources)
	}
	b.opts = append(b.opts, "-o", "APT::Architectures::=arm64")
	b.source(t, repo+".sources", strings.ReplaceAll(sources, "/etc/apt/keyrings/apt.gpg", bKey))
	b.mustUpdate(t)
	b.download(t, lib)

	// A newer version is seen by the next update, with no wait.
	hello2 := buildDeb(t, "hello-e2e", "1.1-1", "amd64", nil)
	s.mustPutDeb(t, repo, "bookworm", "main", hello2)
	a.mustUpdate(t)
	out, _, _ = a.apt(t, "", "apt-cache", "policy", "hello-e2e")
	if !strings.Contains(out, "Candidate: 1.1-1") {
		t.Fatalf("after uploading 1.1-1, apt-cache policy says:\n%s", out)
	}
	a.download(t, hello2)

	// Change one byte of the current InRelease in the blob store: apt
	// must refuse the repository. (A new generation's InRelease, which no
	// GET has read yet: one read is kept in memory, checked against its
	// digest, and served as it was.)
	s.mustPutDeb(t, repo, "bookworm", "main", buildDeb(t, "e2e-tamper", "1.0", "all", nil))
	resp, _, err := s.do(http.MethodHead, "/"+repo+"/dists/bookworm/InRelease", nil, 0, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD InRelease: %v %v", resp, err)
	}
	digest := strings.Trim(resp.Header.Get("ETag"), `"`)
	blobPath := filepath.Join(s.data, "blobs", "sha256", digest[:2], digest)
	body, err := os.ReadFile(blobPath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(body, []byte("Suite: bookworm"))
	tampered := append([]byte(nil), body...)
	tampered[i+len("Suite: ")] = 'B'
	writeBlob(t, blobPath, tampered)
	c := newAptRoot(t)
	c.source(t, repo+".list", "deb [signed-by="+c.key(t, repo, s.get(t, "/"+repo+"/key.gpg"))+"] "+s.url+"/apt/ bookworm main\n")
	out, errOut, code = c.apt(t, "", "apt-get", "update")
	if code == 0 || !regexp.MustCompile(`BADSIG|not signed|signature`).MatchString(errOut) {
		t.Fatalf("apt-get update with a tampered InRelease: exit %d, want a signature failure\n%s\n%s", code, out, errOut)
	}
	out, _, _ = c.apt(t, "", "apt-cache", "policy", "hello-e2e")
	if strings.Contains(out, "Candidate: 1.") {
		t.Fatalf("apt uses the tampered repository:\n%s", out)
	}
	writeBlob(t, blobPath, body)

	// Rotation: both keys sign; a client trusting either one updates.
	s.mustCLI(t, "key", "generate", "next")
	s.mustCLI(t, "repo", "sign", repo, "default", "next")
	var fast float64
	for i, key := range []string{"default", "next"} {
		r := newAptRoot(t)
		kp := r.key(t, key, s.get(t, "/api/v1/keys/"+key+"/public?format=gpg"))
		r.source(t, repo+".list", "deb [signed-by="+kp+"] "+s.url+"/apt/ bookworm main\n")
		if i == 1 {
			fast = metric(t, s, "packyard_http_fast_path_requests_total")
		}
		r.mustUpdate(t)
		r.download(t, hello2)
	}
	// The second root's update read what the first one's had put in the
	// read cache: answered by the fast path.
	if n := metric(t, s, "packyard_http_fast_path_requests_total") - fast; n < 1 {
		t.Errorf("fast path answers during the second root's update: %v, want some", n)
	}
}

// TestAPTUpdateDuringUploads runs apt-get update in a loop while 100
// packages are uploaded concurrently: by-hash and the generations kept
// for the grace period mean apt never sees a hash mismatch.
func TestAPTUpdateDuringUploads(t *testing.T) {
	t.Parallel()
	// An Ed25519 repository key (RSA in TestAPT): apt verifies both.
	s := startServerEnv(t, t.TempDir(), "PACKYARD_DEFAULT_KEY_ALGORITHM=ed25519")
	const repo = "busy"
	s.mustCLI(t, "repo", "create", repo, "--format", "deb")
	first := buildDeb(t, "busy-000", "1.0", "amd64", nil)
	s.mustPutDeb(t, repo, "stable", "main", first)
	a := newAptRoot(t)
	a.source(t, repo+".list", "deb [signed-by="+a.key(t, repo, s.get(t, "/"+repo+"/key.gpg"))+"] "+s.url+"/busy/ stable main\n")
	a.mustUpdate(t)

	pkgs := make([]debPkg, 100)
	for i := range pkgs {
		pkgs[i] = buildDeb(t, fmt.Sprintf("busy-%03d", i+1), "1.0", []string{"amd64", "all"}[i%2], nil)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan string, len(pkgs))
	for _, p := range pkgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if code, b := s.putDeb(t, repo, "stable", "main", p); code != http.StatusCreated {
				errs <- fmt.Sprintf("PUT %s: %d %s", p.file, code, b)
			}
		}()
	}
	go func() { wg.Wait(); done.Store(true) }()
	updates := 0
	for !done.Load() || updates < 3 {
		out, errOut, code := a.apt(t, "", "apt-get", "update")
		updates++
		if code != 0 || strings.Contains(errOut, "Hash Sum mismatch") || strings.Contains(errOut, "unexpected size") ||
			strings.Contains(errOut, "W:") || strings.Contains(errOut, "E:") {
			t.Fatalf("apt-get update %d during uploads: exit %d\n%s\n%s", updates, code, out, errOut)
		}
		if updates > 500 {
			t.Fatal("uploads did not finish")
		}
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	a.mustUpdate(t)
	out, _, _ := a.apt(t, "", "apt-cache", "pkgnames", "busy-")
	if n := len(strings.Fields(out)); n != len(pkgs)+1 {
		t.Fatalf("apt knows %d busy-* packages after the uploads, want %d", n, len(pkgs)+1)
	}
	t.Logf("%d apt-get updates ran during the uploads", updates)
}
