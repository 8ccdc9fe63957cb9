package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

// dnfRoot is an isolated dnf environment: its own installroot, cache,
// configuration file and reposdir, so that nothing on the host is read or
// changed.
type dnfRoot struct {
	root     string
	conf     string
	reposdir string
	cache    string
}

// newDNFRoot prepares an empty installroot; it skips the test when dnf or
// rpm is missing or the test does not run as root.
func newDNFRoot(t *testing.T) *dnfRoot {
	t.Helper()
	requireTool(t, "dnf")
	requireTool(t, "rpm")
	requireRoot(t)
	dir := t.TempDir()
	d := &dnfRoot{
		root:     filepath.Join(dir, "root"),
		conf:     filepath.Join(dir, "dnf.conf"),
		reposdir: filepath.Join(dir, "repos.d"),
		cache:    filepath.Join(dir, "cache"),
	}
	for _, p := range []string{d.root, d.reposdir, d.cache} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(d.conf, []byte("[main]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// fromPath returns the options that make baseurl the only enabled
// repository, under the id id.
func fromPath(id, baseurl string) []string {
	return []string{"--repofrompath=" + id + "," + baseurl, "--enablerepo=" + id}
}

// run runs dnf with repoArgs selecting the repositories (after every host
// repository is disabled) and fails the test unless it exits 0.
func (d *dnfRoot) run(t *testing.T, repoArgs []string, args ...string) string {
	t.Helper()
	full := []string{
		"-y", "--config=" + d.conf, "--installroot=" + d.root, "--releasever=12", "--noplugins",
		"--setopt=reposdir=" + d.reposdir, "--setopt=cachedir=" + d.cache,
		"--setopt=install_weak_deps=False", "--setopt=gpgcheck=0", "--setopt=repo_gpgcheck=0", "--nogpgcheck",
		"--disablerepo=*",
	}
	full = append(full, repoArgs...)
	full = append(full, args...)
	return mustRun(t, cleanEnv("LC_ALL=C.UTF-8"), nil, "dnf", full...)
}

// installed returns the name-version-release.arch of each named package in
// the installroot ("" if it is not installed).
func (d *dnfRoot) installed(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out, _, _ := run(t, cleanEnv(), nil, "rpm", append([]string{"--root", d.root, "-q", "--qf", "%{NAME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n"}, names...)...)
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			got[f[0]] = f[1]
		}
	}
	return got
}

// requireInstalled fails the test unless exactly these versions are
// installed.
func (d *dnfRoot) requireInstalled(t *testing.T, pkgs ...builtRPM) {
	t.Helper()
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = p.name
	}
	got := d.installed(t, names...)
	for _, p := range pkgs {
		if got[p.name] != p.nevra() {
			t.Errorf("rpm -q %s: installed %q, want %s", p.name, got[p.name], p.nevra())
		}
	}
}

func writeFiles(t *testing.T, dir string, pkgs ...builtRPM) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, p := range pkgs {
		f := filepath.Join(dir, p.file)
		if err := os.WriteFile(f, p.data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths[p.name] = f
	}
	return paths
}

// TestDNF uploads packages through every upload path (API PUT, WebDAV with
// curl and with cadaver, packyard push), installs them with dnf, then
// uploads newer versions and upgrades to them at once, with no wait
// between the upload's answer and dnf.
func TestDNF(t *testing.T) {
	t.Parallel()
	dnfScenario(t, func() *server { return startServer(t, t.TempDir()) })
}

// dnfScenario is TestDNF against the server start returns (on SQLite and
// files, or on PostgreSQL and S3).
func dnfScenario(t *testing.T, start func() *server) {
	curl := requireTool(t, "curl")
	cadaver := requireTool(t, "cadaver")
	dnf := newDNFRoot(t)
	s := start()
	const repo = "fleet"
	baseurl := s.url + "/" + repo + "/"

	out, errOut, code := s.cli(t, "repo", "create", repo, "--format", "rpm")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("created rpm repository %q: %s", repo, baseurl)) {
		t.Fatalf("packyard repo create: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// alpha needs beta by a virtual provide and by a file path.
	beta := buildRPM(t, "e2e-beta", "1.0", pkgOpts{provides: []rpmtest.Dep{{Name: "libe2e-beta", Flags: rpmtest.Equal, Version: "1.0"}}})
	alpha := buildRPM(t, "e2e-alpha", "1.0", pkgOpts{requires: []rpmtest.Dep{
		{Name: "libe2e-beta", Flags: rpmtest.Greater | rpmtest.Equal, Version: "1.0"},
		{Name: "/usr/bin/e2e-beta"},
	}})
	gamma := buildRPM(t, "e2e-gamma", "1.0", pkgOpts{})
	delta := buildRPM(t, "e2e-delta", "1.0", pkgOpts{payload: 64 << 10})
	epsilon := buildRPM(t, "e2e-epsilon", "1.0", pkgOpts{requires: []rpmtest.Dep{{Name: "config(e2e-delta)"}}})
	all := []builtRPM{alpha, beta, gamma, delta, epsilon}
	files := writeFiles(t, t.TempDir(), all...)

	// API PUT.
	res := s.mustPut(t, repo, alpha)
	if !res.Created || res.Name != alpha.name || res.Version != alpha.version || res.SHA256 != alpha.sha256 ||
		res.Size != int64(len(alpha.data)) || res.Generation <= 0 {
		t.Errorf("PUT %s answered %+v", alpha.file, res)
	}

	// WebDAV with curl, the token as the Basic auth password.
	out = mustRun(t, cleanEnv(), nil, curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
		"-u", "x:"+s.token, "-T", files[beta.name], s.url+"/dav/"+repo+"/")
	if out != "201" {
		t.Errorf("curl -T %s: HTTP %s, want 201", beta.file, out)
	}

	// WebDAV with cadaver, scripted on stdin, credentials from ~/.netrc.
	home := t.TempDir()
	netrc := fmt.Sprintf("machine 127.0.0.1 login x password %s\n", s.token)
	if err := os.WriteFile(filepath.Join(home, ".netrc"), []byte(netrc), 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("put %s %s\nquit\n", files[gamma.name], gamma.file)
	out, errOut, code = run(t, cleanEnv("HOME="+home), strings.NewReader(script), cadaver, s.url+"/dav/"+repo+"/")
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Errorf("cadaver put: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// packyard push of two files.
	out, errOut, code = s.cli(t, "push", repo, files[delta.name], files[epsilon.name])
	wantSummary := fmt.Sprintf("2 uploaded (%d bytes), 0 already present, 0 failed in ", len(delta.data)+len(epsilon.data))
	if code != 0 || !strings.HasPrefix(out, wantSummary) {
		t.Errorf("packyard push: exit %d, want 0 and a summary starting %q\nstdout: %s\nstderr: %s", code, wantSummary, out, errOut)
	}
	for _, p := range []builtRPM{delta, epsilon} {
		if !regexp.MustCompile(`(?m)^uploaded ` + regexp.QuoteMeta(files[p.name]) + ` -> \S+ \(generation [1-9][0-9]*\)$`).MatchString(errOut) {
			t.Errorf("packyard push: no progress line for %s in\n%s", p.file, errOut)
		}
	}

	// A push with a file that is not an RPM fails, and says which file.
	bogus := filepath.Join(t.TempDir(), "e2e-bogus-1.0-1.noarch.rpm")
	if err := os.WriteFile(bogus, []byte("this is not an rpm package\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = s.cli(t, "push", repo, files[delta.name], bogus)
	if code == 0 || !strings.HasPrefix(out, "0 uploaded (0 bytes), 1 already present, 1 failed in ") ||
		!strings.Contains(errOut, "FAILED   "+bogus+": ") || !strings.Contains(errOut, "HTTP 400") ||
		!strings.Contains(errOut, "present  "+files[delta.name]) {
		t.Errorf("packyard push with a non-RPM file: exit %d, want non-zero and the failure reported\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// The API lists exactly the five packages, with their bytes.
	listed := map[string]string{}
	for _, p := range s.packages(t, repo) {
		listed[p.Name] = p.SHA256
	}
	if len(listed) != len(all) {
		t.Errorf("API lists %d packages, want %d: %v", len(listed), len(all), listed)
	}
	for _, p := range all {
		if listed[p.name] != p.sha256 {
			t.Errorf("API: %s has sha256 %q, uploaded %s", p.name, listed[p.name], p.sha256)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	names := make([]string, len(all))
	for i, p := range all {
		names[i] = p.name
	}
	dnf.run(t, fromPath("py", baseurl), append([]string{"install"}, names...)...)
	dnf.requireInstalled(t, all...)
	conf, err := os.ReadFile(filepath.Join(dnf.root, "etc", "e2e-gamma.conf"))
	if err != nil || !strings.Contains(string(conf), "version = 1.0") {
		t.Errorf("installed /etc/e2e-gamma.conf: %q, %v", conf, err)
	}

	// A newer version is installable as soon as its upload is answered:
	// dnf runs right after the PUT, with its cached metadata expired.
	gamma2 := buildRPM(t, "e2e-gamma", "2.0", pkgOpts{})
	if res := s.mustPut(t, repo, gamma2); res.Generation <= 0 {
		t.Errorf("PUT %s: generation %d", gamma2.file, res.Generation)
	}
	dnf.run(t, fromPath("py", baseurl), "--refresh", "upgrade", "e2e-gamma")
	dnf.requireInstalled(t, gamma2)

	// The same through the server's own .repo file.
	repoFile := s.get(t, "/"+repo+"/"+repo+".repo")
	if !strings.Contains(string(repoFile), "baseurl="+baseurl+"\n") || !strings.Contains(string(repoFile), "["+repo+"]") {
		t.Errorf("/%s/%s.repo does not point at %s:\n%s", repo, repo, baseurl, repoFile)
	}
	if err := os.WriteFile(filepath.Join(dnf.reposdir, repo+".repo"), repoFile, 0o644); err != nil {
		t.Fatal(err)
	}
	delta2 := buildRPM(t, "e2e-delta", "2.0", pkgOpts{payload: 64 << 10})
	s.mustPut(t, repo, delta2)
	dnf.run(t, []string{"--enablerepo=" + repo}, "--refresh", "upgrade")
	dnf.requireInstalled(t, alpha, beta, gamma2, delta2, epsilon)

	// The old versions are still in the repository: nothing was replaced.
	var versions []string
	for _, p := range fetchPrimary(t, s, repo) {
		versions = append(versions, p.nevra())
	}
	slices.Sort(versions)
	want := []string{alpha.nevra(), beta.nevra(), delta.nevra(), delta2.nevra(), epsilon.nevra(), gamma.nevra(), gamma2.nevra()}
	slices.Sort(want)
	if !slices.Equal(versions, want) {
		t.Errorf("primary.xml lists %v, want %v", versions, want)
	}
}
