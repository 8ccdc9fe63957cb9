package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format/arch/archtest"
	"github.com/packyard/packyard/internal/sign"
)

// pacmanRoot is an isolated pacman: its own root, database path, cache,
// log, configuration and keyring (a temporary gpgdir set up with
// pacman-key), so the host is neither read nor changed.
type pacmanRoot struct {
	dir, root, db, cache, gpg, conf, log string
}

func newPacmanRoot(t *testing.T) *pacmanRoot {
	t.Helper()
	requireTool(t, "pacman")
	requireTool(t, "pacman-key")
	requireRoot(t)
	dir := t.TempDir()
	p := &pacmanRoot{dir: dir, root: filepath.Join(dir, "root"), db: filepath.Join(dir, "db"), cache: filepath.Join(dir, "cache"),
		gpg: filepath.Join(dir, "gnupg"), conf: filepath.Join(dir, "pacman.conf"), log: filepath.Join(dir, "pacman.log")}
	for _, d := range []string{p.root, p.db, p.cache, p.gpg} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "pacman-key", "--gpgdir", p.gpg, "--init")
	return p
}

// trust adds an armored public key to the keyring and signs it locally.
func (p *pacmanRoot) trust(t *testing.T, armored []byte, fingerprints ...string) {
	t.Helper()
	f := filepath.Join(p.dir, fmt.Sprintf("key-%d.asc", time.Now().UnixNano()))
	if err := os.WriteFile(f, armored, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "pacman-key", "--gpgdir", p.gpg, "--add", f)
	for _, fpr := range fingerprints {
		mustRun(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "pacman-key", "--gpgdir", p.gpg, "--lsign-key", fpr)
	}
}

// configure writes pacman.conf with one repository section.
func (p *pacmanRoot) configure(t *testing.T, section string) {
	t.Helper()
	conf := "[options]\nArchitecture = x86_64\nSigLevel = Required DatabaseRequired\nLocalFileSigLevel = Optional\n\n" + section
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *pacmanRoot) pacman(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	full := []string{"--config", p.conf, "--root", p.root, "--dbpath", p.db, "--cachedir", p.cache, "--gpgdir", p.gpg, "--logfile", p.log}
	if strings.HasPrefix(args[0], "-S") {
		full = append(full, "--noconfirm", "--noprogressbar", "--disable-download-timeout")
	}
	full = append(full, args...)
	return run(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "pacman", full...)
}

func (p *pacmanRoot) mustPacman(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := p.pacman(t, args...)
	if code != 0 {
		t.Fatalf("pacman %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type archPkg struct {
	spec archtest.Spec
	file string
	data []byte
	sig  []byte
}

func buildArch(t *testing.T, signer *sign.Signer, name, version, arch string) archPkg {
	t.Helper()
	s := archtest.Spec{
		Name: name, Version: version, Arch: arch, Desc: name + " for the end-to-end tests",
		URL: "https://example.com/" + name, Packager: "Packyard Tests <tests@example.com>",
		BuildDate: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Licenses: []string{"MIT"},
		Files: []archtest.File{{Path: "usr/share/doc/" + name + "/README", Body: []byte(name + " " + version + "\n"), Mode: 0o644}},
	}
	data, err := archtest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.DetachBinary(data)
	if err != nil {
		t.Fatal(err)
	}
	return archPkg{spec: s, file: archtest.FileName(s), data: data, sig: sig}
}

func (s *server) mustPutArch(t *testing.T, repo string, p archPkg) {
	t.Helper()
	hdr := http.Header{"X-Packyard-Signature": {base64.StdEncoding.EncodeToString(p.sig)}}
	resp, b, err := s.do(http.MethodPut, "/api/v1/repos/"+url.PathEscape(repo)+"/packages/"+url.PathEscape(p.file), bytes.NewReader(p.data), int64(len(p.data)), hdr)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %v %v %s", p.file, resp, err, b)
	}
}

// TestPacman: real pacman with SigLevel = Required DatabaseRequired and a
// temporary keyring that trusts the repository key (and the packager's)
// syncs the signed database, installs an uploaded package (and an "any"
// one), sees a newer upload at the next -Sy with no wait, and refuses a
// database changed in the store.
func TestPacman(t *testing.T) {
	t.Parallel()
	p := newPacmanRoot(t)
	// Without the read cache: a database already read would be served
	// from memory, as verified then, whatever the store holds now.
	s := startServerEnv(t, t.TempDir(), "PACKYARD_READ_CACHE_SIZE=0")
	const repo = "arch"
	s.mustCLI(t, "repo", "create", repo, "--format", "arch")

	packager, err := sign.Generate("Packyard Packager", "packager@example.com", "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pkSigner, err := sign.NewSigner(packager)
	if err != nil {
		t.Fatal(err)
	}
	tool := buildArch(t, pkSigner, "e2e-tool", "1.0-1", "x86_64")
	docs := buildArch(t, pkSigner, "e2e-docs", "2:0.5-3", "any")
	s.mustPutArch(t, repo, tool)
	s.mustPutArch(t, repo, docs)

	// The repository's key and the packager's, both locally signed.
	info := s.repoInfo(t, repo)
	p.trust(t, s.get(t, "/"+repo+"/key.asc"), info.Signing[0].Fingerprint)
	pkPub, err := packager.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	p.trust(t, pkPub, packager.Fingerprint())

	conf := string(s.get(t, "/"+repo+"/"+repo+".conf"))
	if !strings.Contains(conf, "["+repo+"]\n") || !strings.Contains(conf, "Server = "+s.url+"/"+repo+"/$arch\n") {
		t.Fatalf("%s.conf:\n%s", repo, conf)
	}
	p.configure(t, "["+repo+"]\nServer = "+s.url+"/"+repo+"/$arch\n")
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", "e2e-tool", "e2e-docs")
	for _, f := range []string{"usr/share/doc/e2e-tool/README", "usr/share/doc/e2e-docs/README"} {
		if _, err := os.Stat(filepath.Join(p.root, f)); err != nil {
			t.Errorf("installed file %s: %v", f, err)
		}
	}
	out := p.mustPacman(t, "-Q")
	if !strings.Contains(out, "e2e-tool 1.0-1\n") || !strings.Contains(out, "e2e-docs 2:0.5-3\n") {
		t.Fatalf("pacman -Q:\n%s", out)
	}

	// A newer version, seen by the next -Sy with no wait.
	tool2 := buildArch(t, pkSigner, "e2e-tool", "1.1-1", "x86_64")
	s.mustPutArch(t, repo, tool2)
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", "e2e-tool")
	if out := p.mustPacman(t, "-Q", "e2e-tool"); out != "e2e-tool 1.1-1\n" {
		t.Fatalf("after the upgrade pacman -Q says %q", out)
	}

	// Change one byte of the current x86_64 database in the blob store
	// (the database is stored as gzip members, one per chunk of packages:
	// change the one that holds e2e-tool 1.1-1's desc): a fresh pacman
	// must refuse it.
	part := findBlob(t, s.data, func(raw []byte) bool {
		return bytes.Contains(raw, []byte("%NAME%\ne2e-tool\n")) && bytes.Contains(raw, []byte("%VERSION%\n1.1-1\n")) && !bytes.Contains(raw, []byte("%FILES%"))
	})
	original, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), original...)
	tampered[len(tampered)-1] ^= 0xff
	writeBlob(t, part, tampered)
	q := newPacmanRoot(t)
	q.trust(t, s.get(t, "/"+repo+"/key.asc"), info.Signing[0].Fingerprint)
	q.configure(t, "["+repo+"]\nServer = "+s.url+"/"+repo+"/$arch\n")
	out, errOut, code := q.pacman(t, "-Sy")
	if code == 0 || !strings.Contains(strings.ToLower(out+errOut), "signature") {
		t.Fatalf("pacman -Sy of a tampered database: exit %d, want a signature failure\n%s\n%s", code, out, errOut)
	}
	writeBlob(t, part, original)
}

// findBlob returns the one stored blob that is a gzip member whose content
// matches.
func findBlob(t *testing.T, dataDir string, match func(raw []byte) bool) string {
	t.Helper()
	var found []string
	paths, _ := filepath.Glob(filepath.Join(dataDir, "blobs", "sha256", "*", "*"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			continue
		}
		raw, err := io.ReadAll(zr)
		if err == nil && match(raw) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d blobs match, want 1: %v", len(found), found)
	}
	return found[0]
}

// TestDropFolderArch: pacman packages copied into an arch repository's
// drop folder, one with its .sig beside it and one invalid, become
// installable with real pacman; the invalid one is rejected with its
// reason.
func TestDropFolderArch(t *testing.T) {
	t.Parallel()
	p := newPacmanRoot(t)
	// The repository key is Ed25519 here (RSA in TestPacman): pacman
	// verifies both.
	s := startServerEnv(t, t.TempDir(), "PACKYARD_WATCH_SETTLE=400ms", "PACKYARD_WATCH_RESCAN=5s",
		"PACKYARD_DEFAULT_KEY_ALGORITHM=ed25519")
	drop := filepath.Join(t.TempDir(), "arch")
	const repo = "drop-arch"
	s.mustCLI(t, "repo", "create", repo, "--format", "arch", "--watch-dir", drop)

	packager, err := sign.Generate("Packyard Packager", "packager@example.com", "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pkSigner, err := sign.NewSigner(packager)
	if err != nil {
		t.Fatal(err)
	}
	staging := t.TempDir()
	var pkgs []archPkg
	for i := 0; i < 6; i++ {
		pk := buildArch(t, pkSigner, fmt.Sprintf("drop-a%d", i), "1.0-1", []string{"x86_64", "any"}[i%2])
		pkgs = append(pkgs, pk)
		if i == 0 {
			// The signature first, then the package.
			if err := os.WriteFile(filepath.Join(drop, pk.file+".sig"), pk.sig, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dropFile(t, drop, staging, "", pk.file, pk.data, i)
	}
	dropFile(t, drop, staging, "", "broken-1.0-1-x86_64.pkg.tar.zst", []byte("not a package"), 0)

	deadline := time.Now().Add(45 * time.Second)
	for len(s.packages(t, repo)) < len(pkgs) || len(packageFiles(t, drop)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 45 s: %d packages imported; left: %v", len(s.packages(t, repo)), packageFiles(t, drop))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(drop, pkgs[0].file+".sig")); !os.IsNotExist(err) {
		t.Errorf("the .sig beside the imported package is still there: %v", err)
	}
	// FILE.error is written last, once the file is in rejected/.
	why, err := waitReadFile(filepath.Join(drop, "rejected", "broken-1.0-1-x86_64.pkg.tar.zst.error"), 10*time.Second)
	if err != nil || !strings.Contains(string(why), "repository: "+repo) {
		t.Errorf("rejected reason: %v\n%s", err, why)
	}
	// The signature that came with drop-a0 is served beside it.
	if got := s.get(t, "/"+repo+"/x86_64/"+pkgs[0].file+".sig"); !bytes.Equal(got, pkgs[0].sig) {
		t.Errorf("x86_64/%s.sig is not the dropped signature", pkgs[0].file)
	}

	info := s.repoInfo(t, repo)
	p.trust(t, s.get(t, "/"+repo+"/key.asc"), info.Signing[0].Fingerprint)
	conf := string(s.get(t, "/"+repo+"/"+repo+".conf"))
	p.configure(t, conf[strings.Index(conf, "["+repo+"]"):])
	p.mustPacman(t, "-Sy")
	p.mustPacman(t, "-S", pkgs[1].spec.Name, pkgs[2].spec.Name)
	if out := p.mustPacman(t, "-Q"); !strings.Contains(out, pkgs[1].spec.Name+" 1.0-1\n") || !strings.Contains(out, pkgs[2].spec.Name+" 1.0-1\n") {
		t.Fatalf("pacman -Q:\n%s", out)
	}
}
