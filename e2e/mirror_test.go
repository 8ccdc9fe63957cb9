package e2e

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
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
