package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDropFolder: an rpm and a deb repository with drop folders take 50
// packages copied, moved and rsync-renamed into them (debs into
// <distribution>/<component>/ folders, into <distribution>/ and at the top
// with the repository's default distribution), one of them written
// slowly in pieces, and two invalid files. Every valid package is
// imported exactly once and installable with the real dnf and apt; the
// invalid ones land in rejected/ with their reason.
func TestDropFolder(t *testing.T) {
	t.Parallel()
	dnf := newDNFRoot(t)
	apt := newAptRoot(t)
	const settle = 400 * time.Millisecond
	s := startServerEnv(t, t.TempDir(), "PACKYARD_WATCH_SETTLE="+settle.String(), "PACKYARD_WATCH_RESCAN=5s")
	drops := t.TempDir()
	rpmDir, debDir := filepath.Join(drops, "rpm"), filepath.Join(drops, "deb")
	staging := filepath.Join(drops, "staging") // same filesystem: a move is a rename
	if err := os.MkdirAll(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	s.apiJSON(t, http.MethodPost, "/api/v1/repos", map[string]any{"name": "drop-rpm", "format": "rpm", "watch_dir": rpmDir}, http.StatusCreated, nil)
	s.mustCLI(t, "repo", "create", "drop-deb", "--format", "deb", "--watch-dir", debDir, "--default-distribution", "bookworm")

	rpms := make([]builtRPM, 25)
	for i := range rpms {
		var opts pkgOpts
		if i == 0 {
			opts.payload = 256 << 10 // written slowly
		}
		rpms[i] = buildRPM(t, fmt.Sprintf("drop-r%02d", i), "1.0", opts)
	}
	type debDrop struct {
		pkg        debPkg
		sub, scope string
	}
	places := []struct{ sub, scope string }{
		{"bookworm/main", "bookworm/main"}, {"bookworm/contrib", "bookworm/contrib"}, {"trixie/main", "trixie/main"},
		{"", "bookworm/main"}, {"trixie", "trixie/main"},
	}
	debs := make([]debDrop, 25)
	for i := range debs {
		pl := places[i%len(places)]
		debs[i] = debDrop{buildDeb(t, fmt.Sprintf("drop-d%02d", i), "1.0", []string{"amd64", "all"}[i%2], nil), pl.sub, pl.scope}
	}

	start := time.Now()
	slow := make(chan error, 1)
	go func() { slow <- writeSlowly(filepath.Join(rpmDir, rpms[0].file), rpms[0].data, 20, settle/8) }()
	for i, p := range rpms[1:] {
		dropFile(t, rpmDir, staging, "", p.file, p.data, i)
	}
	for i, d := range debs {
		dropFile(t, debDir, staging, d.sub, d.pkg.file, d.pkg.data, i)
	}
	dropFile(t, rpmDir, staging, "", "broken-1.0-1.noarch.rpm", []byte("this is not an rpm"), 0)
	dropFile(t, debDir, staging, "bookworm/main", "broken_1.0_amd64.deb", []byte("!<arch>\nthis is not a deb"), 0)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}

	// Wait until every valid file is in and both invalid ones are out.
	deadline := time.Now().Add(45 * time.Second)
	for {
		nr, nd := len(s.packages(t, "drop-rpm")), len(s.packages(t, "drop-deb"))
		left := packageFiles(t, drops)
		if nr == len(rpms) && nd == len(debs) && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 45 s: %d rpm and %d deb packages imported, files still in the folders: %v", nr, nd, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("52 files handled %s after the copying started", time.Since(start).Round(time.Millisecond))

	// The stored bytes are the files' (the slow one complete), each deb in
	// the distribution and component of its folder.
	stored := map[string]string{}
	scopes := map[string]string{}
	for _, repo := range []string{"drop-rpm", "drop-deb"} {
		for _, p := range s.packages(t, repo) {
			if _, dup := stored[p.Name]; dup {
				t.Errorf("%s stored twice", p.Name)
			}
			stored[p.Name], scopes[p.Name] = p.SHA256, p.Scope
			if !strings.HasPrefix(p.UploadedBy, "watch:"+drops+"/") {
				t.Errorf("%s uploaded by %q", p.Name, p.UploadedBy)
			}
		}
	}
	for _, p := range rpms {
		if stored[p.name] != p.sha256 {
			t.Errorf("%s: stored %s, want %s", p.name, stored[p.name], p.sha256)
		}
	}
	for _, d := range debs {
		if stored[d.pkg.spec.Package] != sha256hex(d.pkg.data) || scopes[d.pkg.spec.Package] != d.scope {
			t.Errorf("%s: stored %s in %q, want %s in %q", d.pkg.spec.Package, stored[d.pkg.spec.Package], scopes[d.pkg.spec.Package], sha256hex(d.pkg.data), d.scope)
		}
	}

	// The invalid files are in rejected/ with their reason.
	for _, r := range []struct{ dir, file, reason string }{
		{rpmDir, "broken-1.0-1.noarch.rpm", "RPM lead"},
		{debDir, "broken_1.0_amd64.deb", "deb: file ends inside the archive member header"},
	} {
		// FILE.error is written last, once the file is in rejected/.
		why, err := waitReadFile(filepath.Join(r.dir, "rejected", r.file+".error"), 10*time.Second)
		if err != nil {
			t.Errorf("no reason beside rejected/%s: %v", r.file, err)
			continue
		}
		if !strings.Contains(string(why), r.reason) || !strings.Contains(string(why), "repository: drop-") {
			t.Errorf("rejected/%s.error:\n%s", r.file, why)
		}
		if _, err := os.Stat(filepath.Join(r.dir, "rejected", r.file)); err != nil {
			t.Errorf("rejected/%s: %v", r.file, err)
		}
	}

	// Each file was imported once: by the metrics and by the log.
	metrics := string(s.get(t, "/metrics"))
	for _, m := range []struct {
		repo, result string
		want         int
	}{
		{"drop-rpm", "imported", len(rpms)}, {"drop-deb", "imported", len(debs)},
		{"drop-rpm", "rejected", 1}, {"drop-deb", "rejected", 1},
		{"drop-rpm", "identical", 0}, {"drop-deb", "identical", 0},
	} {
		if got := metricValue(metrics, fmt.Sprintf(`packyard_watch_files_total{repo=%q,result=%q}`, m.repo, m.result)); got != m.want {
			t.Errorf("packyard_watch_files_total{repo=%q,result=%q} = %d, want %d", m.repo, m.result, got, m.want)
		}
	}
	imports := map[string]int{}
	for _, line := range s.logs.grep(`"msg":"imported a file from the drop folder"`) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		imports[fmt.Sprint(m["repo"], ":", m["file"])]++
	}
	if len(imports) != len(rpms)+len(debs) {
		t.Errorf("the log names %d imported files, want %d", len(imports), len(rpms)+len(debs))
	}
	for f, n := range imports {
		if n != 1 {
			t.Errorf("%s imported %d times", f, n)
		}
	}

	// dnf installs from the rpm repository, the slowly written one too.
	dnf.run(t, fromPath("drop", s.url+"/drop-rpm/"), "install", rpms[0].name, rpms[7].name, rpms[24].name)
	dnf.requireInstalled(t, rpms[0], rpms[7], rpms[24])

	// apt sees every deb and downloads some, checking their bytes.
	key := apt.key(t, "drop-deb", s.get(t, "/drop-deb/key.gpg"))
	apt.source(t, "drop.list", "deb [signed-by="+key+"] "+s.url+"/drop-deb/ bookworm main contrib\n"+
		"deb [signed-by="+key+"] "+s.url+"/drop-deb/ trixie main\n")
	apt.mustUpdate(t)
	names := make([]string, len(debs))
	for i, d := range debs {
		names[i] = d.pkg.spec.Package
	}
	out, errOut, code := apt.apt(t, "", "apt-cache", append([]string{"policy"}, names...)...)
	if n := strings.Count(out, "Candidate: 1.0\n"); code != 0 || n != len(debs) {
		t.Fatalf("apt-cache policy shows %d of %d packages (exit %d):\n%s\n%s", n, len(debs), code, out, errOut)
	}
	for _, i := range []int{0, 3, 4, 12} {
		apt.download(t, debs[i].pkg)
	}
}

// dropFile puts a file into dir/sub the way operators do, by turns: a
// plain copy, a move from a staging directory, and rsync's hidden
// temporary name renamed when complete.
func dropFile(t *testing.T, dir, staging, sub, name string, data []byte, i int) {
	t.Helper()
	target := filepath.Join(dir, sub)
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	switch i % 3 {
	case 0:
		if err := os.WriteFile(filepath.Join(target, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	case 1:
		tmp := filepath.Join(staging, name)
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(target, name)); err != nil {
			t.Fatal(err)
		}
	case 2:
		tmp := filepath.Join(target, "."+name+".Xa9d2k")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(target, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// writeSlowly writes data to path in pieces with a pause after each: a
// slow copy, taking longer than the settle time in all.
func writeSlowly(path string, data []byte, pieces int, pause time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for i := range pieces {
		if _, err := f.Write(data[i*len(data)/pieces : (i+1)*len(data)/pieces]); err != nil {
			f.Close()
			return err
		}
		time.Sleep(pause)
	}
	return f.Close()
}

// packageFiles lists the package files left in the drop folders outside
// rejected/.
func packageFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "rejected" || d.Name() == "staging") {
			return filepath.SkipDir
		}
		// Packages of every format, and pacman signatures (deleted with
		// their package once it is imported and published).
		if !d.IsDir() && (strings.HasSuffix(p, ".rpm") || strings.HasSuffix(p, ".deb") || strings.Contains(filepath.Base(p), ".pkg.tar.")) {
			out = append(out, strings.TrimPrefix(p, root+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var metricLine = regexp.MustCompile(`^(\S+) (\S+)$`)

// metricValue returns the value of one series in the Prometheus text
// format (0 when absent).
func metricValue(text, series string) int {
	sc := bufio.NewScanner(bytes.NewReader([]byte(text)))
	for sc.Scan() {
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil && m[1] == series {
			v, _ := strconv.ParseFloat(m[2], 64)
			return int(v)
		}
	}
	return 0
}

// waitReadFile reads a file that is about to appear, waiting up to limit.
func waitReadFile(p string, limit time.Duration) ([]byte, error) {
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(p)
		if err == nil || !os.IsNotExist(err) || time.Now().After(deadline) {
			return b, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
