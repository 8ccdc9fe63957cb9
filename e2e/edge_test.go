package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/sign"
	"github.com/packyard/packyard/internal/testengine"
)

// TestEdgeDNFAndAPT: an origin, an edge agent following an rpm and a deb
// repository, and nginx serving the agent's tree. Real dnf (repo_gpgcheck
// on) and real apt (signed-by) install from the nginx-served edge; an
// upload at the origin is installable from the edge within a second; a
// client that read repomd.xml just before a switch still gets every file
// it names; the origin shows the edge's position and lag.
func TestEdgeDNFAndAPT(t *testing.T) {
	t.Parallel()
	d := newDNFRoot(t)
	apt := newAptRoot(t)
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "edge-rpm", "--format", "rpm")
	s.mustCLI(t, "repo", "create", "edge-deb", "--format", "deb")
	p1 := buildRPM(t, "edge-one", "1.0", pkgOpts{payload: 64 << 10})
	s.mustPut(t, "edge-rpm", p1)
	d1 := buildDeb(t, "edge-hello", "1.0-1", "amd64", nil)
	s.mustPutDeb(t, "edge-deb", "bookworm", "main", d1)

	tok := s.edgeToken(t, "edge-e2e")
	cfg, root, state := edgeConfig(t, s.url, "edge-e2e", tok, []string{"edge-rpm", "edge-deb"}, "")
	a := startAgent(t, cfg, root, state)
	for _, r := range []string{"edge-rpm", "edge-deb"} {
		waitEdge(t, "edge copy of "+r, func() (bool, string) { return a.edgeMatches(s, r) })
	}
	ngx := testengine.StartNginx(t, root, testengine.NginxOptions{})

	// dnf with the repository's own .repo file, pointed at the edge:
	// repomd.xml.asc is checked against the key the edge serves, which is
	// the origin's, byte for byte.
	conf := string(s.get(t, "/edge-rpm/edge-rpm.repo"))
	if !strings.Contains(conf, "repo_gpgcheck=1\n") {
		t.Fatalf("edge-rpm.repo does not check signatures:\n%s", conf)
	}
	conf = strings.ReplaceAll(conf, s.url, ngx.URL)
	if err := os.WriteFile(filepath.Join(d.reposdir, "edge-rpm.repo"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := d.runSigned(t, []string{"--enablerepo=edge-rpm"}, "install", p1.name)
	if code != 0 {
		t.Fatalf("dnf install from the edge: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out+errOut, "Importing GPG key") && !strings.Contains(out+errOut, "Importing OpenPGP key") {
		t.Errorf("dnf did not import the key, so it did not check repomd.xml's signature:\n%s\n%s", out, errOut)
	}
	d.requireInstalled(t, p1)
	if n := ngx.Requests(t, "/edge-rpm/repodata/repomd.xml.asc"); n == 0 {
		t.Error("dnf did not fetch repomd.xml.asc from the edge")
	}

	// Upload -> installable from the edge.
	p2 := buildRPM(t, "edge-two", "1.0", pkgOpts{})
	start := time.Now()
	s.mustPut(t, "edge-rpm", p2)
	acked := time.Since(start)
	lag := waitEdge(t, "upload visible at the edge", func() (bool, string) {
		ok, _ := edgePrimaryHas(t, ngx.URL+"/edge-rpm", p2.name)
		return ok, "primary.xml at the edge lacks " + p2.name
	})
	t.Logf("upload answered in %s; installable from the nginx-served edge %s after the answer", acked.Round(time.Millisecond), lag.Round(time.Millisecond))
	if lag >= time.Second {
		t.Errorf("upload -> edge took %s, want < 1 s", lag)
	}
	out, errOut, code = d.runSigned(t, []string{"--enablerepo=edge-rpm", "--refresh"}, "install", p2.name)
	if code != 0 {
		t.Fatalf("dnf install of the new package from the edge: exit %d\n%s\n%s", code, out, errOut)
	}
	d.requireInstalled(t, p1, p2)

	// A client that read repomd.xml just before a switch still gets every
	// file it names (the previous generation stays for the grace period).
	_, before := httpGet(t, ngx.URL+"/edge-rpm/repodata/repomd.xml")
	_, oldHrefs := edgePrimaryHas(t, ngx.URL+"/edge-rpm", p2.name)
	p3 := buildRPM(t, "edge-three", "1.0", pkgOpts{})
	s.mustPut(t, "edge-rpm", p3)
	waitEdge(t, "switch", func() (bool, string) {
		_, now := httpGet(t, ngx.URL+"/edge-rpm/repodata/repomd.xml")
		return !bytes.Equal(now, before), "repomd.xml unchanged"
	})
	if len(oldHrefs) < 3 {
		t.Fatalf("old repomd.xml names %v", oldHrefs)
	}
	for _, h := range oldHrefs {
		if c, _ := httpGet(t, ngx.URL+"/edge-rpm/"+h); c != http.StatusOK {
			t.Errorf("%s, named by the repomd.xml read before the switch: %d", h, c)
		}
	}

	// apt with signed-by: InRelease as the origin signed it.
	key := apt.key(t, "edge-deb", s.get(t, "/edge-deb/key.gpg"))
	list := string(s.get(t, "/edge-deb/edge-deb.list"))
	list = strings.ReplaceAll(strings.ReplaceAll(list, s.url, ngx.URL), "/etc/apt/keyrings/edge-deb.gpg", key)
	if !strings.Contains(list, "signed-by="+key) {
		t.Fatalf("sources line without signed-by:\n%s", list)
	}
	apt.source(t, "edge-deb.list", list)
	apt.mustUpdate(t)
	apt.download(t, d1)
	if out, errOut, code := apt.apt(t, "", "apt-get", "install", "-s", "-y", d1.spec.Package); code != 0 || !strings.Contains(out, "Inst edge-hello (1.0-1") {
		t.Fatalf("apt-get install -s from the edge: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := ngx.Requests(t, "/edge-deb/dists/bookworm/InRelease"); n == 0 {
		t.Error("apt did not fetch InRelease from the edge")
	}
	d2 := buildDeb(t, "edge-hello", "1.1-1", "amd64", nil)
	start = time.Now()
	s.mustPutDeb(t, "edge-deb", "bookworm", "main", d2)
	waitEdge(t, "deb upload at the edge", func() (bool, string) { return a.edgeMatches(s, "edge-deb") })
	t.Logf("deb upload answered -> edge tree identical: %s", time.Since(start).Round(time.Millisecond))
	apt.mustUpdate(t)
	apt.download(t, d2)

	// The origin shows where the edge is, in the API and in /metrics.
	rpmGen := s.repoInfo(t, "edge-rpm").CurrentGeneration
	waitEdge(t, "edge position at the origin", func() (bool, string) {
		var edges []struct {
			Name  string `json:"name"`
			Repos map[string]struct {
				Generation     int64 `json:"generation"`
				LagGenerations int64 `json:"lag_generations"`
			} `json:"repos"`
		}
		s.apiJSON(t, http.MethodGet, "/api/v1/edges", nil, http.StatusOK, &edges)
		if len(edges) != 1 || edges[0].Name != "edge-e2e" {
			return false, "edges: " + strings.Repeat("?", len(edges))
		}
		r := edges[0].Repos["edge-rpm"]
		return r.Generation == rpmGen && r.LagGenerations == 0, "edge not at the current generation"
	})
	m := string(s.get(t, "/metrics"))
	if !regexp.MustCompile(`packyard_edge_lag_generations\{edge="edge-e2e",repo="edge-rpm"\} 0\n`).MatchString(m) {
		t.Errorf("/metrics lacks the edge's lag:\n%s", grepLines(m, "packyard_edge"))
	}
	noTempFiles(t, root)
	if errs := a.logs.grep(`"level":"ERROR"`); len(errs) > 0 {
		t.Errorf("agent logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestEdgeOutage: the agent killed with SIGKILL and the origin killed with
// SIGKILL: the edge keeps serving its last complete generation (dnf
// installs from it while the origin is down); each time, the agent resumes
// from its sequence number and fetches only blobs it lacks; the origin
// shows the lag meanwhile.
func TestEdgeOutage(t *testing.T) {
	t.Parallel()
	d := newDNFRoot(t)
	data := t.TempDir()
	s := startServer(t, data)
	const repo = "edge-out"
	s.mustCLI(t, "repo", "create", repo, "--format", "rpm")
	p1 := buildRPM(t, "out-one", "1.0", pkgOpts{payload: 32 << 10})
	s.mustPut(t, repo, p1)
	tok := s.edgeToken(t, "edge-out")
	px := newEdgeProxy(t, s.url)
	cfg, root, state := edgeConfig(t, px.url, "edge-out", tok, []string{repo}, "")
	a := startAgent(t, cfg, root, state)
	waitEdge(t, "edge copy", func() (bool, string) { return a.edgeMatches(s, repo) })
	ngx := testengine.StartNginx(t, root, testengine.NginxOptions{})

	// The agent dies; the origin moves on; the origin shows the lag.
	a.waitSettled()
	a.kill9()
	p2 := buildRPM(t, "out-two", "1.0", pkgOpts{})
	s.mustPut(t, repo, p2)
	var edges []struct {
		Repos map[string]struct {
			LagGenerations int64   `json:"lag_generations"`
			LagSeconds     float64 `json:"lag_seconds"`
		} `json:"repos"`
	}
	s.apiJSON(t, http.MethodGet, "/api/v1/edges", nil, http.StatusOK, &edges)
	if len(edges) != 1 || edges[0].Repos[repo].LagGenerations < 1 {
		t.Errorf("edges while the agent is down = %+v; want a lag of at least 1 generation", edges)
	}
	if m := string(s.get(t, "/metrics")); !regexp.MustCompile(`packyard_edge_lag_generations\{edge="edge-out",repo="edge-out"\} [1-9]`).MatchString(m) {
		t.Errorf("/metrics does not show the lag:\n%s", grepLines(m, "packyard_edge"))
	}
	if c, _ := httpGet(t, ngx.URL+"/"+repo+"/repodata/repomd.xml"); c != http.StatusOK {
		t.Errorf("edge repomd.xml while the agent is down: %d", c)
	}
	a = startAgent(t, cfg, root, state)
	started, _ := a.logs.find("packyard agent started")
	if since, _ := started["since"].(float64); since <= 0 {
		t.Errorf("restarted agent starts from sequence %v, want its stored position", started["since"])
	}
	waitEdge(t, "caught up after kill -9", func() (bool, string) { return a.edgeMatches(s, repo) })
	if n1, n2 := px.requested(p1.sha256), px.requested(p2.sha256); n1 != 1 || n2 != 1 {
		t.Errorf("blob requests after the agent's restart: %s %d, %s %d; want 1 each", p1.name, n1, p2.name, n2)
	}

	// The origin dies: the edge serves on, and dnf installs from it.
	s.kill9()
	conf := "[edge-out]\nname=edge-out\nbaseurl=" + ngx.URL + "/" + repo + "/\ngpgcheck=0\nrepo_gpgcheck=1\ngpgkey=" + ngx.URL + "/" + repo + "/repodata/repomd.xml.key\n"
	if err := os.WriteFile(filepath.Join(d.reposdir, repo+".repo"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := d.runSigned(t, []string{"--enablerepo=" + repo}, "install", p1.name, p2.name)
	if code != 0 {
		t.Fatalf("dnf install from the edge while the origin is down: exit %d\n%s\n%s", code, out, errOut)
	}
	d.requireInstalled(t, p1, p2)
	if st := a.status(); st.Repos[repo] == 0 {
		t.Errorf("agent status while the origin is down: %+v", st)
	}

	// The origin comes back (on a new port: the proxy follows it).
	before := px.blobRequests()
	s2 := startServer(t, data)
	px.setTarget(s2.url)
	p3 := buildRPM(t, "out-three", "1.0", pkgOpts{})
	s2.mustPut(t, repo, p3)
	took := waitEdge(t, "caught up after the origin's restart", func() (bool, string) { return a.edgeMatches(s2, repo) })
	t.Logf("edge caught up %s after the upload to the restarted origin", took.Round(time.Millisecond))
	if n1, n2, n3 := px.requested(p1.sha256), px.requested(p2.sha256), px.requested(p3.sha256); n1 != 1 || n2 != 1 || n3 != 1 {
		t.Errorf("blob requests after the origin's restart: %d %d %d, want 1 each (%d requests since)", n1, n2, n3, px.blobRequests()-before)
	}
	if !strings.Contains(strings.Join(a.logs.grep("change feed unavailable"), ""), "retrying") {
		t.Error("the agent did not log that the feed was unavailable")
	}
	noTempFiles(t, root)
	// Before the second origin stops: its graceful shutdown waits for the
	// open event stream.
	a.stop()
}

// TestEdgeFullSyncAndState: a full sync repairs a deleted and a corrupted
// file, deletes an unmanaged file and keeps a keep_files entry; with its
// state_db deleted, the agent rebuilds its state without re-downloading
// files that verify.
func TestEdgeFullSyncAndState(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	const repo = "edge-fsck"
	s.mustCLI(t, "repo", "create", repo, "--format", "rpm")
	p1 := buildRPM(t, "fsck-one", "1.0", pkgOpts{payload: 16 << 10})
	p2 := buildRPM(t, "fsck-two", "1.0", pkgOpts{payload: 16 << 10})
	r1 := s.mustPut(t, repo, p1)
	r2 := s.mustPut(t, repo, p2)
	tok := s.edgeToken(t, "edge-fsck")
	px := newEdgeProxy(t, s.url)
	cfg, root, state := edgeConfig(t, px.url, "edge-fsck", tok, []string{repo}, "rehash_every = 1")
	keep := filepath.Join(root, repo, "RPM-GPG-KEY-site")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(b, []byte("keep_files = [\""+keep+"\"]\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, cfg, root, state)
	waitEdge(t, "edge copy", func() (bool, string) { return a.edgeMatches(s, repo) })
	a.fullSync() // the first full sync is done once this one is

	path1 := filepath.Join(root, repo, filepath.FromSlash(r1.Path))
	path2 := filepath.Join(root, repo, filepath.FromSlash(r2.Path))
	if !fileExists(path1) || !fileExists(path2) {
		t.Fatalf("packages not at %s, %s", path1, path2)
	}
	corrupt, _ := os.ReadFile(path1)
	corrupt[len(corrupt)/2] ^= 0xff
	if err := os.WriteFile(path1, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path2); err != nil {
		t.Fatal(err)
	}
	unmanaged := filepath.Join(root, repo, "Packages", "x", "dropped.rpm")
	for _, p := range []string{unmanaged, keep} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not from the origin\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := a.fullSync()
	if res["repaired"] != float64(2) || res["unmanaged_deleted"] != float64(1) {
		t.Errorf("full sync report %v; want 2 repaired, 1 unmanaged deleted", res)
	}
	if ok, why := a.edgeMatches(s, repo); !ok {
		t.Errorf("after the full sync: %s", why)
	}
	if fileExists(unmanaged) {
		t.Error("the unmanaged file survived the full sync")
	}
	if !fileExists(keep) {
		t.Error("the keep_files entry was deleted")
	}
	if n1, n2 := px.requested(p1.sha256), px.requested(p2.sha256); n1 != 2 || n2 != 2 {
		t.Errorf("blob requests: %d and %d, want 2 each (the first copy and the repair)", n1, n2)
	}

	// state_db lost: rebuilt from the tree and the origin.
	a.stop()
	for _, suf := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(state + suf); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	before := px.blobRequests()
	a = startAgent(t, cfg, root, state)
	waitEdge(t, "state rebuilt", func() (bool, string) { return a.edgeMatches(s, repo) })
	if n := px.blobRequests() - before; n != 0 {
		t.Errorf("rebuilding the state downloaded %d blobs, want 0", n)
	}
	if !fileExists(keep) {
		t.Error("the keep_files entry was deleted by the rebuild")
	}
	// It follows the feed again.
	p3 := buildRPM(t, "fsck-three", "1.0", pkgOpts{})
	s.mustPut(t, repo, p3)
	waitEdge(t, "following after the rebuild", func() (bool, string) { return a.edgeMatches(s, repo) })
	noTempFiles(t, root)
}

// TestEdgeRefusesCorruptBlob: a blob whose bytes do not match its digest
// is refused: it never enters the tree, the pointer files are not switched,
// and the agent reports the error (its /healthz, its log, the origin).
func TestEdgeRefusesCorruptBlob(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	const repo = "edge-bad"
	s.mustCLI(t, "repo", "create", repo, "--format", "rpm")
	p1 := buildRPM(t, "bad-one", "1.0", pkgOpts{})
	s.mustPut(t, repo, p1)
	tok := s.edgeToken(t, "edge-bad")
	px := newEdgeProxy(t, s.url)
	cfg, root, state := edgeConfig(t, px.url, "edge-bad", tok, []string{repo}, "")
	a := startAgent(t, cfg, root, state)
	waitEdge(t, "edge copy", func() (bool, string) { return a.edgeMatches(s, repo) })
	repomdBefore, err := os.ReadFile(filepath.Join(root, repo, "repodata", "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	gen := a.status().Repos[repo]

	p2 := buildRPM(t, "bad-two", "1.0", pkgOpts{payload: 8 << 10})
	px.setCorrupt(p2.sha256)
	r2 := s.mustPut(t, repo, p2)
	waitEdge(t, "error reported", func() (bool, string) {
		st := a.status()
		return st.Status == "degraded" && strings.Contains(st.LastError, "digest mismatch"), "status " + st.Status
	})
	if fileExists(filepath.Join(root, repo, filepath.FromSlash(r2.Path))) {
		t.Error("the corrupted package was written into the tree")
	}
	if now, _ := os.ReadFile(filepath.Join(root, repo, "repodata", "repomd.xml")); !bytes.Equal(now, repomdBefore) {
		t.Error("repomd.xml was switched to a generation whose package failed verification")
	}
	if st := a.status(); st.Repos[repo] != gen {
		t.Errorf("served generation moved from %d to %d", gen, st.Repos[repo])
	}
	waitEdge(t, "error at the origin", func() (bool, string) {
		var edges []struct {
			LastError string `json:"last_error"`
		}
		s.apiJSON(t, http.MethodGet, "/api/v1/edges", nil, http.StatusOK, &edges)
		return len(edges) == 1 && strings.Contains(edges[0].LastError, "digest mismatch"), "no error at the origin"
	})
	if len(a.logs.grep("digest mismatch")) == 0 {
		t.Error("the agent's log does not name the digest mismatch")
	}
	// Good bytes again: the edge catches up.
	px.setCorrupt("")
	waitEdge(t, "recovered", func() (bool, string) { return a.edgeMatches(s, repo) })
	noTempFiles(t, root)
}

// TestEdgeRevokedToken: once its token is revoked the origin refuses the
// agent (401) and the agent's log says why; the edge keeps serving.
func TestEdgeRevokedToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	const repo = "edge-tok"
	s.mustCLI(t, "repo", "create", repo, "--format", "rpm")
	s.mustPut(t, repo, buildRPM(t, "tok-one", "1.0", pkgOpts{}))
	tok := s.edgeToken(t, "edge-tok")
	cfg, root, state := edgeConfig(t, s.url, "edge-tok", tok, []string{repo}, "")
	a := startAgent(t, cfg, root, state)
	waitEdge(t, "edge copy", func() (bool, string) { return a.edgeMatches(s, repo) })
	s.mustCLI(t, "token", "revoke", "edge-tok")
	s.mustPut(t, repo, buildRPM(t, "tok-two", "1.0", pkgOpts{}))
	waitEdge(t, "refusal logged", func() (bool, string) {
		for _, l := range a.logs.grep(`"level":"ERROR"`) {
			if strings.Contains(l, "401") && strings.Contains(l, "revoked") {
				return true, ""
			}
		}
		return false, "no ERROR line naming the 401"
	})
	if st := a.status(); st.Repos[repo] == 0 {
		t.Errorf("status after the revocation: %+v", st)
	}
	if !fileExists(filepath.Join(root, repo, "repodata", "repomd.xml")) {
		t.Error("the edge stopped serving after its token was revoked")
	}
	// An edge token may not upload.
	edge := &server{t: t, url: s.url, token: s.edgeToken(t, "edge-tok2"), http: s.http}
	code, _, _, err := edge.putPackage(repo, "x.rpm", strings.NewReader("x"), 1, nil)
	if err != nil || code != http.StatusForbidden {
		t.Errorf("upload with an edge token: %d %v, want 403", code, err)
	}
}

// TestEdgePacman: real pacman (SigLevel = Required DatabaseRequired)
// installs from an nginx-served edge: the signed database, a package with
// its detached signature (kept by the origin with the package's record)
// and an "any" package from the architecture's directory.
func TestEdgePacman(t *testing.T) {
	t.Parallel()
	p := newPacmanRoot(t)
	s := startServer(t, t.TempDir())
	const repo = "edge-arch"
	s.mustCLI(t, "repo", "create", repo, "--format", "arch")
	packager, err := sign.Generate("Packyard Packager", "packager@example.com", "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pkSigner, err := sign.NewSigner(packager)
	if err != nil {
		t.Fatal(err)
	}
	tool := buildArch(t, pkSigner, "edge-tool", "1.0-1", "x86_64")
	docs := buildArch(t, pkSigner, "edge-docs", "1.0-1", "any")
	s.mustPutArch(t, repo, tool)
	s.mustPutArch(t, repo, docs)

	tok := s.edgeToken(t, "edge-arch")
	cfg, root, state := edgeConfig(t, s.url, "edge-arch", tok, []string{repo}, "")
	a := startAgent(t, cfg, root, state)
	waitEdge(t, "edge copy", func() (bool, string) { return a.edgeMatches(s, repo) })
	ngx := testengine.StartNginx(t, root, testengine.NginxOptions{})

	info := s.repoInfo(t, repo)
	p.trust(t, s.get(t, "/"+repo+"/key.asc"), info.Signing[0].Fingerprint)
	pkPub, err := packager.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	p.trust(t, pkPub, packager.Fingerprint())
	p.configure(t, "["+repo+"]\nServer = "+ngx.URL+"/"+repo+"/$arch\n")
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", "edge-tool", "edge-docs")
	if out := p.mustPacman(t, "-Q"); !strings.Contains(out, "edge-tool 1.0-1\n") || !strings.Contains(out, "edge-docs 1.0-1\n") {
		t.Fatalf("pacman -Q:\n%s", out)
	}
	for _, f := range []string{"/" + repo + "/x86_64/" + repo + ".db.sig", "/" + repo + "/x86_64/" + docs.file} {
		if ngx.Requests(t, f) == 0 {
			t.Errorf("pacman did not fetch %s from the edge", f)
		}
	}
	// A newer version, through the edge.
	tool2 := buildArch(t, pkSigner, "edge-tool", "1.1-1", "x86_64")
	s.mustPutArch(t, repo, tool2)
	waitEdge(t, "new version at the edge", func() (bool, string) { return a.edgeMatches(s, repo) })
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", "edge-tool")
	if out := p.mustPacman(t, "-Q", "edge-tool"); out != "edge-tool 1.1-1\n" {
		t.Fatalf("after the upgrade from the edge pacman -Q says %q", out)
	}
}
