package e2e

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/client"
	"github.com/packyard/packyard/internal/sign"
	"github.com/packyard/packyard/internal/testengine"
)

// upstreamKey is an upstream distribution's signing key: its signer and
// its public key in a file, as an operator passes it with --upstream-key.
type upstreamKey struct {
	signer *sign.Signer
	key    *sign.Key
	file   string
}

func newUpstreamKey(t *testing.T, name string) upstreamKey {
	t.Helper()
	key, err := sign.Generate(name, "archive@example.com", "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "upstream.asc")
	writeFile(t, file, pub)
	return upstreamKey{signer: signer, key: key, file: file}
}

// signedRPMUpstream (re)generates a createrepo_c repository in root with
// pkgs added and signs its repomd.xml with k (repomd.xml.asc).
func signedRPMUpstream(t *testing.T, root string, k upstreamKey, pkgs ...builtRPM) {
	t.Helper()
	rpmUpstream(t, root, pkgs...)
	md, err := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.signer.DetachArmored(md)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "repodata", "repomd.xml.asc"), sig)
}

// mirrorSync runs `packyard mirror sync` and returns the sync's record,
// failing the test when the command's exit status is not want (0 or 1).
func mirrorSync(t *testing.T, s *server, repo string, want int) client.Sync {
	t.Helper()
	out, errOut, code := s.cli(t, "-o", "json", "mirror", "sync", repo)
	if (code == 0) != (want == 0) {
		t.Fatalf("packyard mirror sync %s: exit %d, want %d\nstdout: %s\nstderr: %s", repo, code, want, out, errOut)
	}
	var rec client.Sync
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("mirror sync output %q: %v (stderr %s)", out, err, errOut)
	}
	return rec
}

// syncStats decodes a sync record's counters.
func syncStats(t *testing.T, rec client.Sync) map[string]any {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal(rec.Stats, &st); err != nil {
		t.Fatalf("sync stats %s: %v", rec.Stats, err)
	}
	return st
}

// primaryNames lists the package names of a repository's primary.xml
// (under prefix: "REPO" or "REPO/@SNAPSHOT").
func primaryNames(t *testing.T, s *server, prefix string) map[string]bool {
	t.Helper()
	md := fetchRepomd(t, s, prefix)
	var doc struct {
		Packages []struct {
			Name string `xml:"name"`
		} `xml:"package"`
	}
	if err := xml.Unmarshal(fetchData(t, s, prefix, md.data(t, "primary")), &doc); err != nil {
		t.Fatalf("%s primary.xml: %v", prefix, err)
	}
	names := map[string]bool{}
	for _, p := range doc.Packages {
		names[p.Name] = true
	}
	return names
}

// TestMirrorRPM: a union mirror and an exact mirror of a signed
// createrepo_c repository served by nginx. Real dnf, checking the
// mirror's signature, installs from the union mirror; a package the
// upstream prunes stays in the union mirror and installable, and leaves
// the exact one, whose metadata is the upstream's byte for byte; a
// snapshot taken before the upstream changed keeps serving the old set.
func TestMirrorRPM(t *testing.T) {
	t.Parallel()
	k := newUpstreamKey(t, "Upstream RPM Archive")
	up := t.TempDir()
	kept := buildRPM(t, "mirror-kept", "1.0", pkgOpts{})
	pruned := buildRPM(t, "mirror-pruned", "1.0", pkgOpts{})
	signedRPMUpstream(t, up, k, kept, pruned)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "mirror", "--upstream", ngx.URL+"/", "--upstream-key", k.file)
	s.mustCLI(t, "repo", "create", "el-exact", "--format", "rpm", "--kind", "mirror", "--mode", "exact", "--upstream", ngx.URL+"/", "--upstream-key", k.file)

	rec := mirrorSync(t, s, "el", 0)
	if rec.Status != "ok" || rec.Generation == 0 {
		t.Fatalf("first sync: %+v", rec)
	}
	if st := syncStats(t, rec); st["added"] != 2.0 || st["packages"] != 2.0 {
		t.Errorf("first sync stats %v, want 2 packages added", st)
	}
	exact := mirrorSync(t, s, "el-exact", 0)
	if st := syncStats(t, exact); st["added"] != 2.0 || st["reused"] != 2.0 || st["downloaded_bytes"].(float64) > 20000 {
		t.Errorf("exact mirror's first sync %v: want 2 packages added from the blobs the union mirror stored, without downloading them", st)
	}
	for _, p := range []builtRPM{kept, pruned} {
		if n := ngx.Requests(t, "/Packages/"+p.file); n != 1 {
			t.Errorf("upstream requests for %s: %d, want 1 (two mirrors share one download)", p.file, n)
		}
	}
	upMD, _ := os.ReadFile(filepath.Join(up, "repodata", "repomd.xml"))
	if got := s.get(t, "/el-exact/repodata/repomd.xml"); string(got) != string(upMD) {
		t.Errorf("exact mirror's repomd.xml differs from the upstream's")
	}

	d := newDNFRoot(t)
	writeRepoFile(t, s, d, "el", "")
	if out, errOut, code := d.runSigned(t, []string{"--enablerepo=el"}, "install", "mirror-pruned"); code != 0 {
		t.Fatalf("dnf install from the mirror: exit %d\n%s\n%s", code, out, errOut)
	}
	d.requireInstalled(t, pruned)

	s.mustCLI(t, "snapshot", "create", "el", "before")
	// Bad snapshot requests are refused with a clear message, and leave
	// no snapshot behind.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"snapshot", "create", "el", "before"}, "has a snapshot"},
		{[]string{"snapshot", "create", "el", "bad name!"}, "snapshot name"},
		{[]string{"snapshot", "create", "nosuch", "x"}, "nosuch"},
		{[]string{"snapshot", "delete", "el", "nosuch"}, "not found"},
		{[]string{"mirror", "sync", "el-frozen-missing"}, "el-frozen-missing"},
	} {
		if _, errOut, code := s.cli(t, c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("packyard %v: exit %d, %q, want an error saying %q", c.args, code, errOut, c.want)
		}
	}
	if out := s.mustCLI(t, "snapshot", "list", "el"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "before") {
		t.Errorf("snapshot list after refused requests:\n%s", out)
	}
	if code, _, _, _ := proxyGet(s, "/el/@nosuch/repodata/repomd.xml"); code != http.StatusNotFound {
		t.Errorf("GET of a missing snapshot: %d, want 404", code)
	}
	// Only mirrors sync.
	s.createRepo(t, "hosted-el")
	if _, errOut, code := s.cli(t, "mirror", "sync", "hosted-el"); code == 0 || !strings.Contains(errOut, "not a mirror") {
		t.Errorf("sync of a hosted repository: exit %d, %s", code, errOut)
	}

	// The upstream prunes one package, adds one and re-signs.
	if err := os.Remove(filepath.Join(up, "Packages", pruned.file)); err != nil {
		t.Fatal(err)
	}
	added := buildRPM(t, "mirror-added", "1.0", pkgOpts{})
	signedRPMUpstream(t, up, k, added)
	rec = mirrorSync(t, s, "el", 0)
	if st := syncStats(t, rec); st["added"] != 1.0 || st["dropped"] != 1.0 || st["present"] != 1.0 {
		t.Errorf("second sync stats %v, want 1 added, 1 present, 1 dropped upstream (kept)", st)
	}
	if names := primaryNames(t, s, "el"); !names["mirror-pruned"] || !names["mirror-kept"] || !names["mirror-added"] {
		t.Errorf("union mirror names %v after the upstream pruned mirror-pruned, want all three", names)
	}
	d2 := newDNFRoot(t)
	writeRepoFile(t, s, d2, "el", "")
	if out, errOut, code := d2.runSigned(t, []string{"--enablerepo=el"}, "install", "mirror-pruned", "mirror-added"); code != 0 {
		t.Fatalf("dnf install of a package pruned upstream, from the mirror: exit %d\n%s\n%s", code, out, errOut)
	}
	d2.requireInstalled(t, pruned, added)

	rec = mirrorSync(t, s, "el-exact", 0)
	if st := syncStats(t, rec); st["removed"] != 1.0 {
		t.Errorf("exact mirror's second sync stats %v, want 1 removed", st)
	}
	if names := primaryNames(t, s, "el-exact"); names["mirror-pruned"] || !names["mirror-added"] {
		t.Errorf("exact mirror names %v, want the upstream's set (no mirror-pruned)", names)
	}
	for _, p := range s.packages(t, "el-exact") {
		if p.Name == "mirror-pruned" {
			t.Errorf("exact mirror still lists the package the upstream pruned: %+v", p)
		}
	}

	// The snapshot still serves the set of before the update.
	if names := primaryNames(t, s, "el/@before"); !names["mirror-pruned"] || names["mirror-added"] {
		t.Errorf("snapshot names %v, want the set before the upstream changed", names)
	}
	d3 := newDNFRoot(t)
	conf := string(s.get(t, "/el/el.repo"))
	conf = strings.ReplaceAll(conf, "[el]", "[el-before]")
	conf = strings.ReplaceAll(conf, s.url+"/el/\n", s.url+"/el/@before/\n")
	writeFile(t, filepath.Join(d3.reposdir, "el-before.repo"), []byte(conf))
	if out, errOut, code := d3.runSigned(t, []string{"--enablerepo=el-before"}, "install", "mirror-pruned"); code != 0 {
		t.Fatalf("dnf install from the snapshot: exit %d\n%s\n%s\n%s", code, out, errOut, conf)
	}
	if _, _, code := d3.runSigned(t, []string{"--enablerepo=el-before"}, "install", "mirror-added"); code == 0 {
		t.Errorf("the snapshot offers mirror-added, which the upstream added after it was taken")
	}
	// A snapshot seeds a hosted repository.
	s.mustCLI(t, "repo", "create", "el-frozen", "--format", "rpm", "--from-snapshot", "el@before")
	if names := primaryNames(t, s, "el-frozen"); len(names) != 2 || !names["mirror-pruned"] {
		t.Errorf("repository seeded from the snapshot names %v, want its two packages", names)
	}
	if _, errOut, code := s.cli(t, "repo", "create", "el-bad", "--format", "rpm", "--from-snapshot", "el@nosuch"); code == 0 || !strings.Contains(errOut, "snapshot") {
		t.Errorf("seed from a missing snapshot: exit %d %s", code, errOut)
	}
	if _, _, code := s.cli(t, "repo", "show", "el-bad"); code == 0 {
		t.Errorf("a repository whose seeding failed was left behind")
	}
	if metric(t, s, "packyard_mirror_syncs_total", `repo="el"`, `status="ok"`) != 2 {
		t.Errorf("packyard_mirror_syncs_total{repo=el,status=ok} != 2")
	}
}

// TestMirrorAPT: a union mirror of a signed apt-ftparchive repository;
// real apt, trusting only packyard's key (signed-by), installs from it,
// and a package the upstream prunes stays installable. An exact mirror
// of the same upstream serves the upstream's InRelease byte for byte,
// and apt trusting only the upstream's key updates from it.
func TestMirrorAPT(t *testing.T) {
	t.Parallel()
	k := newUpstreamKey(t, "Upstream APT Archive")
	hello := buildDeb(t, "mirror-hello", "1.0-1", "amd64", nil)
	gone := buildDeb(t, "mirror-gone", "2.0-1", "amd64", nil)
	up := t.TempDir()
	debUpstream(t, up, k.signer, hello, gone)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "debian", "--format", "deb", "--kind", "mirror", "--upstream", ngx.URL,
		"--upstream-key", k.file, "--distribution", "stable", "--architectures", "amd64")
	s.mustCLI(t, "repo", "create", "debian-exact", "--format", "deb", "--kind", "mirror", "--mode", "exact", "--upstream", ngx.URL,
		"--upstream-key", k.file, "--distribution", "stable", "--architectures", "amd64")
	if rec := mirrorSync(t, s, "debian", 0); syncStats(t, rec)["added"] != 2.0 {
		t.Fatalf("first sync: %s", rec.Stats)
	}
	mirrorSync(t, s, "debian-exact", 0)
	upIn, _ := os.ReadFile(filepath.Join(up, "dists", "stable", "InRelease"))
	if got := s.get(t, "/debian-exact/dists/stable/InRelease"); string(got) != string(upIn) {
		t.Errorf("exact mirror's InRelease differs from the upstream's")
	}

	// The upstream prunes mirror-gone and regenerates its indexes.
	if err := os.Remove(filepath.Join(up, "pool", "main", gone.file)); err != nil {
		t.Fatal(err)
	}
	debUpstream(t, up, k.signer)
	if rec := mirrorSync(t, s, "debian", 0); syncStats(t, rec)["dropped"] != 1.0 {
		t.Errorf("second sync: %s, want 1 dropped upstream", rec.Stats)
	}
	mirrorSync(t, s, "debian-exact", 0)

	a := newAptRoot(t)
	a.source(t, "mirror.list", "deb [signed-by="+a.key(t, "debian", s.get(t, "/debian/key.gpg"))+"] "+s.url+"/debian/ stable main\n")
	a.mustUpdate(t)
	out, errOut, code := a.apt(t, "", "apt-get", "install", "-s", "-y", "mirror-hello", "mirror-gone")
	if code != 0 || !strings.Contains(out, "Inst mirror-gone") {
		t.Fatalf("apt-get install -s from the mirror, of a package pruned upstream: exit %d\n%s\n%s", code, out, errOut)
	}
	a.download(t, gone)
	a.download(t, hello)

	pub, err := k.key.BinaryPublic()
	if err != nil {
		t.Fatal(err)
	}
	b := newAptRoot(t)
	b.source(t, "exact.list", "deb [signed-by="+b.key(t, "upstream", pub)+"] "+s.url+"/debian-exact/ stable main\n")
	b.mustUpdate(t)
	b.download(t, hello)
	if out, _, code := b.apt(t, "", "apt-get", "install", "-s", "-y", "mirror-gone"); code == 0 {
		t.Errorf("the exact mirror still offers mirror-gone, pruned upstream:\n%s", out)
	}
}

// TestMirrorPacman: a mirror of a repo-add repository whose packages are
// signed by a packager key (the database is not signed, as on Arch
// mirrors): the sync checks every package's signature with the upstream
// key, and real pacman (SigLevel Required) installs from the mirror.
func TestMirrorPacman(t *testing.T) {
	t.Parallel()
	p := newPacmanRoot(t)
	k := newUpstreamKey(t, "Upstream Packager")
	tool := buildArch(t, k.signer, "mirror-tool", "1.0-1", "x86_64")
	up := t.TempDir()
	archUpstream(t, up, tool)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "archmirror", "--format", "arch", "--kind", "mirror", "--upstream", ngx.URL,
		"--upstream-key", k.file, "--architectures", "x86_64", "--db-name", "up")
	if rec := mirrorSync(t, s, "archmirror", 0); syncStats(t, rec)["added"] != 1.0 {
		t.Fatalf("sync: %s", rec.Stats)
	}
	info := s.repoInfo(t, "archmirror")
	p.trust(t, s.get(t, "/archmirror/key.asc"), info.Signing[0].Fingerprint)
	pkPub, err := k.key.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	p.trust(t, pkPub, k.key.Fingerprint())
	p.configure(t, "[archmirror]\nServer = "+s.url+"/archmirror/$arch\n")
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", "mirror-tool")
	if out := p.mustPacman(t, "-Q", "mirror-tool"); out != "mirror-tool 1.0-1\n" {
		t.Fatalf("pacman -Q: %q", out)
	}

	// A package signed by another key is refused, and nothing new is
	// published.
	other := newUpstreamKey(t, "Someone Else")
	bad := buildArch(t, other.signer, "mirror-bad", "1.0-1", "x86_64")
	archUpstream(t, up, bad)
	gen := s.repoInfo(t, "archmirror").CurrentGeneration
	rec := mirrorSync(t, s, "archmirror", 1)
	if rec.Status != "failed" || !strings.Contains(rec.Error, "mirror-bad") || !strings.Contains(rec.Error, "signature") {
		t.Errorf("sync of a package signed by an unknown key: %+v", rec)
	}
	if g := s.repoInfo(t, "archmirror").CurrentGeneration; g != gen {
		t.Errorf("generation %d after a failed sync, want %d", g, gen)
	}
}

// TestMirrorRefusals: upstream metadata signed by a key not in the
// mirror's keyring, and a package whose bytes differ from the digest the
// signed metadata gives, fail the sync with a clear message; nothing new
// is published and the previous generation is still served.
func TestMirrorRefusals(t *testing.T) {
	t.Parallel()
	k := newUpstreamKey(t, "Upstream RPM Archive")
	up := t.TempDir()
	one := buildRPM(t, "mirror-one", "1.0", pkgOpts{})
	signedRPMUpstream(t, up, k, one)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "mirror", "--upstream", ngx.URL, "--upstream-key", k.file)
	mirrorSync(t, s, "el", 0)
	gen := s.repoInfo(t, "el").CurrentGeneration
	before := s.get(t, "/el/repodata/repomd.xml")

	// A package whose bytes differ from the digest the metadata gives.
	two := buildRPM(t, "mirror-two", "1.0", pkgOpts{})
	signedRPMUpstream(t, up, k, two)
	tampered := append([]byte(nil), two.data...)
	tampered[len(tampered)-1] ^= 0xff
	writeFile(t, filepath.Join(up, "Packages", two.file), tampered)
	rec := mirrorSync(t, s, "el", 1)
	if rec.Status != "failed" || !strings.Contains(rec.Error, two.file) || !strings.Contains(rec.Error, "sha256") {
		t.Errorf("sync of a tampered package: %+v", rec)
	}
	if g := s.repoInfo(t, "el").CurrentGeneration; g != gen {
		t.Errorf("generation %d after a failed sync, want %d", g, gen)
	}
	if got := s.get(t, "/el/repodata/repomd.xml"); string(got) != string(before) {
		t.Errorf("repomd.xml changed after a failed sync")
	}
	if names := primaryNames(t, s, "el"); names["mirror-two"] {
		t.Errorf("the failed sync published mirror-two")
	}

	// Metadata signed by a key the mirror does not trust.
	writeFile(t, filepath.Join(up, "Packages", two.file), two.data)
	other := newUpstreamKey(t, "Impostor")
	signedRPMUpstream(t, up, other)
	rec = mirrorSync(t, s, "el", 1)
	if rec.Status != "failed" || !strings.Contains(rec.Error, "repomd.xml") || !strings.Contains(rec.Error, "not in the trusted keyring") {
		t.Errorf("sync of metadata signed by an untrusted key: %+v", rec)
	}
	if g := s.repoInfo(t, "el").CurrentGeneration; g != gen {
		t.Errorf("generation %d after a refused signature, want %d", g, gen)
	}
	if n := ngx.Requests(t, "/Packages/"+two.file); n != 1 {
		t.Errorf("requests for %s: %d, want 1 (none after the refused signature)", two.file, n)
	}
	// Signed properly again: the sync succeeds.
	signedRPMUpstream(t, up, k)
	if rec := mirrorSync(t, s, "el", 0); rec.Status != "ok" {
		t.Errorf("sync after the upstream was fixed: %+v", rec)
	}
	if names := primaryNames(t, s, "el"); !names["mirror-two"] || !names["mirror-one"] {
		t.Errorf("mirror names %v after the upstream was fixed", names)
	}
	// The API lists every sync with what it did.
	var syncs []client.Sync
	s.apiJSON(t, http.MethodGet, "/api/v1/repos/el/syncs", nil, http.StatusOK, &syncs)
	if len(syncs) != 4 || syncs[0].Status != "ok" || syncs[1].Status != "failed" || syncs[2].Status != "failed" {
		t.Errorf("syncs listed: %+v", syncs)
	}
}

// TestMirrorInterrupted: nginx is killed in the middle of a sync; the
// sync fails cleanly, and the next one (nginx back) completes without
// downloading again any package the first one stored (nginx's access
// log counts the requests).
func TestMirrorInterrupted(t *testing.T) {
	t.Parallel()
	k := newUpstreamKey(t, "Upstream RPM Archive")
	up := t.TempDir()
	var pkgs []builtRPM
	for i := range 12 {
		pkgs = append(pkgs, buildRPM(t, "mirror-slow"+string(rune('a'+i)), "1.0", pkgOpts{payload: 200 << 10}))
	}
	signedRPMUpstream(t, up, k, pkgs...)
	// 200 KiB at 100 KiB/s (nginx sends the first second's worth at
	// once): each package takes a second or more.
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{LimitRate: "100k"})
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "mirror", "--upstream", ngx.URL,
		"--upstream-key", k.file, "--concurrency", "2")
	gen := s.repoInfo(t, "el").CurrentGeneration
	var started client.Sync
	s.apiJSON(t, http.MethodPost, "/api/v1/repos/el/sync", nil, http.StatusAccepted, &started)
	deadline := time.Now().Add(30 * time.Second)
	syncURL := "/api/v1/repos/el/syncs/" + itoa(started.ID)
	for _, bad := range []string{"soon", "-1s", "2m"} {
		s.apiJSON(t, http.MethodGet, syncURL+"?wait="+bad, nil, http.StatusBadRequest, nil)
	}
	for {
		// ?wait= answers after the duration while the sync runs.
		var cur client.Sync
		asked := time.Now()
		s.apiJSON(t, http.MethodGet, syncURL+"?wait=100ms", nil, http.StatusOK, &cur)
		if cur.Status != "running" || time.Now().After(deadline) {
			t.Fatalf("sync before the kill: %+v", cur)
		}
		if d := time.Since(asked); d < 100*time.Millisecond {
			t.Fatalf("GET ?wait=100ms on a running sync answered after %s", d)
		}
		if cur.Progress != nil && cur.Progress.Done >= 4 {
			break
		}
	}
	ngx.Kill(t)
	// …and as soon as the sync ends, long before a long wait is over.
	var rec client.Sync
	asked := time.Now()
	s.apiJSON(t, http.MethodGet, syncURL+"?wait=60s", nil, http.StatusOK, &rec)
	if rec.Status == "running" {
		t.Fatalf("the sync did not end within a minute after nginx was killed: %+v", rec)
	}
	t.Logf("GET ?wait=60s answered %s after the request, the sync having ended", time.Since(asked).Round(time.Millisecond))
	if rec.Status != "failed" || !strings.Contains(rec.Error, "connection refused") && !strings.Contains(rec.Error, "EOF") && !strings.Contains(rec.Error, "reset") {
		t.Errorf("interrupted sync: %+v", rec)
	}
	if g := s.repoInfo(t, "el").CurrentGeneration; g != gen {
		t.Errorf("generation %d after an interrupted first sync, want %d (the empty one of the creation)", g, gen)
	}
	stored := map[string]bool{}
	for _, e := range ngx.Access(t) {
		if e.Status == http.StatusOK && strings.HasPrefix(e.Path, "/Packages/") {
			stored[e.Path] = true
		}
	}
	if len(stored) < 2 || len(stored) == len(pkgs) {
		t.Fatalf("packages fully downloaded before the kill: %d of %d", len(stored), len(pkgs))
	}
	ngx.Start(t)
	rec = mirrorSync(t, s, "el", 0)
	if st := syncStats(t, rec); st["added"].(float64)+st["present"].(float64) != float64(len(pkgs)) || st["added"].(float64) > float64(len(pkgs)-len(stored)) {
		t.Errorf("sync after nginx is back: %s", rec.Stats)
	}
	for p := range stored {
		if n := ngx.Requests(t, p); n != 1 {
			t.Errorf("%s: %d requests, want 1: the second sync downloaded again what the first stored", p, n)
		}
	}
	d := newDNFRoot(t)
	writeRepoFile(t, s, d, "el", "")
	if out, errOut, code := d.runSigned(t, []string{"--enablerepo=el"}, "install", pkgs[0].name, pkgs[len(pkgs)-1].name); code != 0 {
		t.Fatalf("dnf install after the resumed sync: exit %d\n%s\n%s", code, out, errOut)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestMirrorOptions: upstreams from a metalink (the first mirror it names
// is down: the next is used), include/exclude patterns, keeping only the
// newest version of each package, and the CLI's text summary.
func TestMirrorOptions(t *testing.T) {
	t.Parallel()
	k := newUpstreamKey(t, "Upstream RPM Archive")
	up := t.TempDir()
	old := buildRPM(t, "mirror-app", "1.0", pkgOpts{})
	cur := buildRPM(t, "mirror-app", "2.0", pkgOpts{})
	debug := buildRPM(t, "mirror-app-debuginfo", "2.0", pkgOpts{})
	other := buildRPM(t, "unrelated", "1.0", pkgOpts{})
	signedRPMUpstream(t, up, k, old, cur, debug, other)
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{})
	// A metalink as Fedora's MirrorManager serves it: the first mirror
	// refuses connections.
	ml := `<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/">
 <files><file name="repomd.xml"><resources maxconnections="1">
  <url protocol="http" type="http" location="XX" preference="100">http://127.0.0.1:1/dead/repodata/repomd.xml</url>
  <url protocol="rsync" type="rsync" location="XX" preference="90">rsync://mirror.example/repodata/repomd.xml</url>
  <url protocol="http" type="http" location="XX" preference="80">` + ngx.URL + `/repodata/repomd.xml</url>
 </resources></file></files>
</metalink>`
	writeFile(t, filepath.Join(up, "metalink"), []byte(ml))
	s := startServer(t, t.TempDir())
	s.mustCLI(t, "repo", "create", "app", "--format", "rpm", "--kind", "mirror", "--metalink", ngx.URL+"/metalink?repo=x&arch=y",
		"--upstream-key", k.file, "--include", "mirror-*", "--exclude", "*-debuginfo", "--retain", "1")
	out := s.mustCLI(t, "mirror", "sync", "app")
	if !strings.Contains(out, ": ok, generation") || !strings.Contains(out, "2 packages upstream: 2 added") || !strings.Contains(out, "1 retired") {
		t.Errorf("mirror sync output:\n%s", out)
	}
	names := map[string]int{}
	md := fetchRepomd(t, s, "app")
	var doc struct {
		Packages []struct {
			Name    string `xml:"name"`
			Version struct {
				Ver string `xml:"ver,attr"`
			} `xml:"version"`
		} `xml:"package"`
	}
	if err := xml.Unmarshal(fetchData(t, s, "app", md.data(t, "primary")), &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Packages {
		names[p.Name+"-"+p.Version.Ver]++
	}
	if len(names) != 1 || names["mirror-app-2.0"] != 1 {
		t.Errorf("mirror holds %v, want only mirror-app-2.0 (debuginfo excluded, unrelated not included, 1.0 retired)", names)
	}
	if n := ngx.Requests(t, "/Packages/"+other.file) + ngx.Requests(t, "/Packages/"+debug.file); n != 0 {
		t.Errorf("excluded packages were downloaded (%d requests)", n)
	}
	// The retired version is not copied again by the next sync.
	if out := s.mustCLI(t, "mirror", "sync", "app"); !strings.Contains(out, "0 added") || strings.Contains(out, "retired") {
		t.Errorf("second sync output:\n%s", out)
	}
	list := s.mustCLI(t, "mirror", "syncs", "app")
	if !strings.Contains(list, "ok") || !strings.Contains(list, "2 added") {
		t.Errorf("mirror syncs:\n%s", list)
	}
	// Settings of mirrors are refused on other kinds, and a mirror needs
	// a way to trust its upstream.
	if _, errOut, code := s.cli(t, "repo", "create", "h", "--format", "rpm", "--include", "x*"); code == 0 || !strings.Contains(errOut, "--kind mirror") {
		t.Errorf("mirror flag on a hosted repository: exit %d %s", code, errOut)
	}
	if _, errOut, code := s.cli(t, "repo", "create", "nokey", "--format", "rpm", "--kind", "mirror", "--upstream", ngx.URL); code == 0 || !strings.Contains(errOut, "--upstream-key") {
		t.Errorf("mirror without upstream key: exit %d %s", code, errOut)
	}
	if _, errOut, code := s.cli(t, "repo", "create", "nodist", "--format", "deb", "--kind", "mirror", "--upstream", ngx.URL, "--upstream-key", k.file); code == 0 || !strings.Contains(errOut, "distribution") {
		t.Errorf("deb mirror without distribution: exit %d %s", code, errOut)
	}
	if _, errOut, code := s.cli(t, "mirror", "sync", "nosuch"); code == 0 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("sync of a missing repository: exit %d %s", code, errOut)
	}
}
