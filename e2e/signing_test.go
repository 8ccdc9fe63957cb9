package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runSigned runs dnf like run, but with repo_gpgcheck left to the
// repository file: dnf verifies repomd.xml.asc with the key that gpgkey=
// names. It returns the output and exit code instead of failing.
func (d *dnfRoot) runSigned(t *testing.T, repoArgs []string, args ...string) (string, string, int) {
	t.Helper()
	full := []string{
		"-y", "--config=" + d.conf, "--installroot=" + d.root, "--releasever=12", "--noplugins",
		"--setopt=reposdir=" + d.reposdir, "--setopt=cachedir=" + d.cache,
		"--setopt=install_weak_deps=False", "--disablerepo=*",
	}
	full = append(full, repoArgs...)
	full = append(full, args...)
	return run(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "dnf", full...)
}

// writeRepoFile installs the repository's own .repo file (gpgcheck=0,
// repo_gpgcheck=1, gpgkey=) into the dnf root's reposdir, with gpgkey
// replaced when key is not "".
func writeRepoFile(t *testing.T, s *server, d *dnfRoot, repo, key string) {
	t.Helper()
	conf := string(s.get(t, "/"+repo+"/"+repo+".repo"))
	for _, want := range []string{"gpgcheck=0\n", "repo_gpgcheck=1\n", "gpgkey=" + s.url + "/" + repo + "/repodata/repomd.xml.key\n"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("%s.repo lacks %q:\n%s", repo, want, conf)
		}
	}
	if key != "" {
		conf = regexp.MustCompile(`(?m)^gpgkey=.*$`).ReplaceAllString(conf, "gpgkey="+key)
	}
	if err := os.WriteFile(filepath.Join(d.reposdir, repo+".repo"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDNFSignedRepository installs from a repository signed out of the box
// with dnf checking repomd.xml's signature (gpgcheck=0 repo_gpgcheck=1),
// shows that a repomd.xml changed in the store is refused, and that while
// a key is rotated clients trusting either key install.
func TestDNFSignedRepository(t *testing.T) {
	t.Parallel()
	// Without the read cache: a repomd.xml already read would be served
	// from memory, as verified then, whatever the store holds now.
	s := startServerEnv(t, t.TempDir(), "PACKYARD_READ_CACHE_SIZE=0")
	const repo = "signed"
	s.createRepo(t, repo)
	info := s.repoInfo(t, repo)
	if len(info.Signing) != 1 || info.Signing[0].Name != "default" || len(info.Signing[0].Fingerprint) != 40 {
		t.Fatalf("new repository signing = %+v, want the default key", info.Signing)
	}
	pkg := buildRPM(t, "e2e-signed", "1.0", pkgOpts{})
	s.mustPut(t, repo, pkg)

	d := newDNFRoot(t)
	writeRepoFile(t, s, d, repo, "")
	out, errOut, code := d.runSigned(t, []string{"--enablerepo=" + repo}, "install", pkg.name)
	if code != 0 {
		t.Fatalf("dnf install from the signed repository: exit %d\n%s\n%s", code, out, errOut)
	}
	d.requireInstalled(t, pkg)
	if !strings.Contains(out+errOut, "Importing GPG key") && !strings.Contains(out+errOut, "Importing OpenPGP key") {
		t.Errorf("dnf did not import the repository key, so it did not check the signature:\n%s\n%s", out, errOut)
	}

	// Change one digit of the current repomd.xml's revision in the blob
	// store: the XML stays valid, the signature no longer matches.
	resp, body, err := s.do(http.MethodGet, "/"+repo+"/repodata/repomd.xml", nil, 0, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET repomd.xml: %v %v", resp, err)
	}
	digest := strings.Trim(resp.Header.Get("ETag"), `"`)
	blobPath := filepath.Join(s.data, "blobs", "sha256", digest[:2], digest)
	tampered := regexp.MustCompile(`<revision>(\d+)(\d)</revision>`).ReplaceAllFunc(body, func(m []byte) []byte {
		i := bytes.LastIndex(m, []byte("</"))
		m = append([]byte(nil), m...)
		m[i-1] = '0' + (m[i-1]-'0'+1)%10
		return m
	})
	if bytes.Equal(tampered, body) {
		t.Fatal("could not tamper with repomd.xml")
	}
	writeBlob(t, blobPath, tampered)
	d2 := newDNFRoot(t)
	writeRepoFile(t, s, d2, repo, "")
	out, errOut, code = d2.runSigned(t, []string{"--enablerepo=" + repo}, "install", pkg.name)
	if code == 0 {
		t.Fatalf("dnf installed from a repository whose repomd.xml does not match its signature:\n%s\n%s", out, errOut)
	}
	if !strings.Contains(strings.ToLower(out+errOut), "signature") {
		t.Errorf("dnf failed, but not for the signature:\n%s\n%s", out, errOut)
	}
	writeBlob(t, blobPath, body)

	// Rotation: sign with the old and a new key; a client that knows only
	// one of them installs either way.
	s.mustCLI(t, "key", "generate", "next", "--algorithm", "ed25519") // rotating from RSA to Ed25519
	out = s.mustCLI(t, "repo", "sign", repo, "default", "next")
	if !strings.Contains(out, "signed by default") || !strings.Contains(out, "signed by next") {
		t.Fatalf("repo sign: %s", out)
	}
	for _, key := range []string{"default", "next"} {
		d := newDNFRoot(t)
		writeRepoFile(t, s, d, repo, s.url+"/api/v1/keys/"+key+"/public")
		out, errOut, code := d.runSigned(t, []string{"--enablerepo=" + repo}, "install", pkg.name)
		if code != 0 {
			t.Fatalf("dnf trusting only %q during the rotation: exit %d\n%s\n%s", key, code, out, errOut)
		}
		d.requireInstalled(t, pkg)
	}
}

func writeBlob(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustCLI runs the packyard CLI and fails the test unless it exits 0.
func (s *server) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := s.cli(t, args...)
	if code != 0 {
		t.Fatalf("packyard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}
