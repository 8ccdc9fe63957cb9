package watch

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/repo"
)

// TestDropCopied: a file written into the folder is imported, published
// and deleted, and recorded as uploaded by the watcher.
func TestDropCopied(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	e.start(nil, Options{})
	data := rpmFile(t, "copied", "1.0", "copied")
	write(t, filepath.Join(dir, "copied-1.0-1.x86_64.rpm"), data)

	ps := e.waitPackages("el9", 1)
	if ps[0].Name != "copied" || ps[0].Digest != sha(data) || ps[0].UploadedBy != "watch:"+dir {
		t.Errorf("stored %+v", ps[0])
	}
	waitGone(t, filepath.Join(dir, "copied-1.0-1.x86_64.rpm"))
	r, err := e.svc.GetRepo(context.Background(), "el9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Lookup(context.Background(), "el9", ps[0].Path); err != nil {
		t.Errorf("package not in the current generation %d: %v", r.CurrentGeneration, err)
	}
	e.metrics.want(t, "el9", map[string]int{ResultImported: 1})
}

// TestDropMovedIn: a file renamed into the folder (mv on one filesystem)
// is imported.
func TestDropMovedIn(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	e.start(nil, Options{})
	outside := filepath.Join(e.base, "staging", "moved-1.0-1.x86_64.rpm")
	data := rpmFile(t, "moved", "1.0", "moved")
	write(t, outside, data)
	if err := os.Rename(outside, filepath.Join(dir, "moved-1.0-1.x86_64.rpm")); err != nil {
		t.Fatal(err)
	}
	if ps := e.waitPackages("el9", 1); ps[0].Digest != sha(data) {
		t.Errorf("stored %s, want %s", ps[0].Digest, sha(data))
	}
	waitGone(t, filepath.Join(dir, "moved-1.0-1.x86_64.rpm"))
	e.metrics.want(t, "el9", map[string]int{ResultImported: 1})
}

// TestDropWrittenSlowly: a file written in pieces, each within the settle
// time of the last but all of it over several settle times, is imported
// once, complete.
func TestDropWrittenSlowly(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	const settle = time.Second
	e.start(nil, Options{Settle: settle})
	data := rpmFile(t, "slow", "1.0", strings.Repeat("slowly written payload ", 4000))
	f, err := os.Create(filepath.Join(dir, "slow-1.0-1.x86_64.rpm"))
	if err != nil {
		t.Fatal(err)
	}
	const pieces = 25
	start := time.Now()
	for i := range pieces {
		lo, hi := i*len(data)/pieces, (i+1)*len(data)/pieces
		if _, err := f.Write(data[lo:hi]); err != nil {
			t.Fatal(err)
		}
		// The pause is the scenario (a slow copy), not a wait.
		time.Sleep(settle / 10)
		if n := len(e.packages("el9")); n != 0 {
			t.Fatalf("imported after %d of %d pieces", i+1, pieces)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*settle {
		t.Fatalf("the write took %s, less than two settle times", took)
	}
	if ps := e.waitPackages("el9", 1); ps[0].Digest != sha(data) || ps[0].Size != int64(len(data)) {
		t.Errorf("stored %s (%d bytes), want the complete file %s (%d bytes)", ps[0].Digest, ps[0].Size, sha(data), len(data))
	}
	waitGone(t, filepath.Join(dir, "slow-1.0-1.x86_64.rpm"))
	e.metrics.want(t, "el9", map[string]int{ResultImported: 1})
}

// TestDropTemporaryName: rsync writes ".NAME.XXXXXX" and renames it when
// complete; nothing is imported before the rename.
func TestDropTemporaryName(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	e.start(nil, Options{})
	data := rpmFile(t, "synced", "1.0", "synced")
	tmp := filepath.Join(dir, ".synced-1.0-1.x86_64.rpm.Xa9d2k")
	write(t, tmp, data)
	for _, name := range []string{"a.rpm.part", "b.rpm.tmp", "c.rpm.partial", "d.rpm.filepart", "e.rpm~", "f.rpm.crdownload", "#g.rpm#"} {
		write(t, filepath.Join(dir, name), []byte("being written"))
	}
	// A file dropped after them is imported after they were looked at.
	write(t, filepath.Join(dir, "marker-1.0-1.x86_64.rpm"), rpmFile(t, "marker", "1.0", "m"))
	e.waitPackages("el9", 1)
	if !exist(tmp) {
		t.Fatal("the temporary file was touched")
	}
	if err := os.Rename(tmp, filepath.Join(dir, "synced-1.0-1.x86_64.rpm")); err != nil {
		t.Fatal(err)
	}
	e.waitPackages("el9", 2)
	waitGone(t, filepath.Join(dir, "synced-1.0-1.x86_64.rpm"))
	waitGone(t, filepath.Join(dir, "marker-1.0-1.x86_64.rpm"))
	for _, name := range []string{"a.rpm.part", "b.rpm.tmp", "c.rpm.partial", "d.rpm.filepart", "e.rpm~", "f.rpm.crdownload", "#g.rpm#"} {
		if !exist(filepath.Join(dir, name)) {
			t.Errorf("temporary file %s was touched", name)
		}
	}
	if exist(filepath.Join(dir, rejectedDir)) {
		t.Error("something was rejected")
	}
	e.metrics.want(t, "el9", map[string]int{ResultImported: 2})
}

// TestDropInvalid: a file that is not a valid package goes to rejected/
// with the reason beside it; a second one of the same name does not
// overwrite it.
func TestDropInvalid(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	e.start(nil, Options{})
	write(t, filepath.Join(dir, "broken.rpm"), []byte("this is not an rpm"))
	waitFor(t, "rejected/broken.rpm.error", func() bool { return exist(filepath.Join(dir, "rejected", "broken.rpm.error")) })
	why, err := os.ReadFile(filepath.Join(dir, "rejected", "broken.rpm.error"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"error: broken.rpm: rpm: 18-byte file without an RPM lead\n", "file: broken.rpm\n", "repository: el9\n", "time: 20"} {
		if !strings.Contains(string(why), want) {
			t.Errorf("broken.rpm.error does not say %q:\n%s", want, why)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "rejected", "broken.rpm")); string(b) != "this is not an rpm" {
		t.Errorf("rejected/broken.rpm holds %q", b)
	}
	if exist(filepath.Join(dir, "broken.rpm")) {
		t.Error("broken.rpm is still in the folder")
	}

	write(t, filepath.Join(dir, "broken.rpm"), []byte("another broken one"))
	waitFor(t, "rejected/broken.1.rpm.error", func() bool { return exist(filepath.Join(dir, "rejected", "broken.1.rpm.error")) })
	if b, _ := os.ReadFile(filepath.Join(dir, "rejected", "broken.1.rpm")); string(b) != "another broken one" {
		t.Errorf("rejected/broken.1.rpm holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "rejected", "broken.rpm")); string(b) != "this is not an rpm" {
		t.Errorf("the first rejected file was overwritten: %q", b)
	}
	if n := len(e.packages("el9")); n != 0 {
		t.Errorf("%d packages stored", n)
	}
	e.metrics.want(t, "el9", map[string]int{ResultRejected: 2})
}

// TestDropConflictAndIdentical: other bytes under a stored identity are
// rejected as a conflict; the same bytes again are removed as identical.
func TestDropConflictAndIdentical(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	e.start(nil, Options{})
	first := rpmFile(t, "twice", "1.0", "first build")
	if _, err := e.svc.Ingest(context.Background(), repo.Upload{Repo: "el9", Filename: "twice-1.0-1.x86_64.rpm", Body: strings.NewReader(string(first)), Wait: true}); err != nil {
		t.Fatal(err)
	}

	write(t, filepath.Join(dir, "twice-1.0-1.x86_64.rpm"), rpmFile(t, "twice", "1.0", "second build"))
	errFile := filepath.Join(dir, "rejected", "twice-1.0-1.x86_64.rpm.error")
	waitFor(t, "the conflict's .error", func() bool { return exist(errFile) })
	if why, _ := os.ReadFile(errFile); !strings.Contains(string(why), "package conflict") {
		t.Errorf(".error does not say conflict:\n%s", why)
	}

	write(t, filepath.Join(dir, "twice-1.0-1.x86_64.rpm"), first)
	waitGone(t, filepath.Join(dir, "twice-1.0-1.x86_64.rpm"))
	if ps := e.packages("el9"); len(ps) != 1 || ps[0].Digest != sha(first) {
		t.Errorf("packages %+v", ps)
	}
	waitFor(t, "the identical file counted", func() bool { return e.metrics.get("el9", ResultIdentical) == 1 })
	e.metrics.want(t, "el9", map[string]int{ResultRejected: 1, ResultIdentical: 1})
	if exist(filepath.Join(dir, "rejected", "twice-1.0-1.x86_64.1.rpm")) {
		t.Error("the identical file was rejected")
	}
}

// TestDropDeb: APT packages take their distribution and component from
// their folder, else from the repository's defaults; one with neither is
// rejected with the reason.
func TestDropDeb(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("apt", "deb", nil)
	w := e.start(nil, Options{})
	// The folders are created after the watcher started.
	write(t, filepath.Join(dir, "bookworm", "main", "pkg-a_1.0_amd64.deb"), debFile(t, "pkg-a", "1.0"))
	write(t, filepath.Join(dir, "trixie", "contrib", "pkg-b_1.0_amd64.deb"), debFile(t, "pkg-b", "1.0"))
	write(t, filepath.Join(dir, "bookworm", "pkg-c_1.0_amd64.deb"), debFile(t, "pkg-c", "1.0"))
	write(t, filepath.Join(dir, "bookworm", "main", "deeper", "pkg-x_1.0_amd64.deb"), debFile(t, "pkg-x", "1.0"))
	write(t, filepath.Join(dir, "pkg-d_1.0_amd64.deb"), debFile(t, "pkg-d", "1.0"))

	e.waitPackages("apt", 3)
	errFile := filepath.Join(dir, "rejected", "pkg-d_1.0_amd64.deb.error")
	waitFor(t, "d's .error", func() bool { return exist(errFile) })
	if why, _ := os.ReadFile(errFile); !strings.Contains(string(why), "default_distribution") || !strings.Contains(string(why), "<distribution>/<component>/") {
		t.Errorf("pkg-d_1.0_amd64.deb.error does not say what to do:\n%s", why)
	}

	patch, _ := json.Marshal(map[string]string{"default_distribution": "sid", "default_component": "extra"})
	if _, err := e.svc.UpdateRepoConfig(context.Background(), "apt", patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to see the defaults", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		f := w.folders["apt"]
		return f != nil && f.cfg.Load().distribution == "sid"
	})
	write(t, filepath.Join(dir, "pkg-e_1.0_amd64.deb"), debFile(t, "pkg-e", "1.0"))
	write(t, filepath.Join(dir, "bookworm", "pkg-f_1.0_amd64.deb"), debFile(t, "pkg-f", "1.0"))
	scopes := map[string]string{}
	for _, p := range e.waitPackages("apt", 5) {
		scopes[p.Name] = p.Scope
	}
	want := map[string]string{"pkg-a": "bookworm/main", "pkg-b": "trixie/contrib", "pkg-c": "bookworm/main", "pkg-e": "sid/extra", "pkg-f": "bookworm/extra"}
	for n, s := range want {
		if scopes[n] != s {
			t.Errorf("%s is in %q, want %q", n, scopes[n], s)
		}
	}
	waitGone(t, filepath.Join(dir, "pkg-e_1.0_amd64.deb"))
	waitGone(t, filepath.Join(dir, "bookworm", "pkg-f_1.0_amd64.deb"))
	if !exist(filepath.Join(dir, "bookworm", "main", "deeper", "pkg-x_1.0_amd64.deb")) {
		t.Error("a file too deep was touched")
	}
	e.metrics.want(t, "apt", map[string]int{ResultImported: 5, ResultRejected: 1})
}

// TestDropKeepImported: imported files move to imported/, never over one
// of the same name.
func TestDropKeepImported(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", map[string]any{"watch_keep_imported": true})
	e.start(nil, Options{})
	data := rpmFile(t, "kept", "1.0", "kept")
	name := "kept-1.0-1.x86_64.rpm"
	write(t, filepath.Join(dir, name), data)
	waitGone(t, filepath.Join(dir, name))
	write(t, filepath.Join(dir, name), data)
	waitGone(t, filepath.Join(dir, name))
	for _, p := range []string{name, "kept-1.0-1.x86_64.1.rpm"} {
		if b, err := os.ReadFile(filepath.Join(dir, importedDir, p)); err != nil || sha(b) != sha(data) {
			t.Errorf("imported/%s: %v", p, err)
		}
	}
	e.waitPackages("el9", 1)
	e.metrics.want(t, "el9", map[string]int{ResultImported: 1, ResultIdentical: 1})
}

// TestDropPresentAtStart: files copied while the server was down are
// imported when it starts.
func TestDropPresentAtStart(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	apt := e.createRepo("apt", "deb", map[string]any{"default_distribution": "stable"})
	write(t, filepath.Join(dir, "early-1.0-1.x86_64.rpm"), rpmFile(t, "early", "1.0", "early"))
	write(t, filepath.Join(apt, "early_1.0_amd64.deb"), debFile(t, "early", "1.0"))
	write(t, filepath.Join(apt, "stable", "main", "later_1.0_amd64.deb"), debFile(t, "later", "1.0"))
	e.start(nil, Options{})
	e.waitPackages("el9", 1)
	e.waitPackages("apt", 2)
	waitGone(t, filepath.Join(dir, "early-1.0-1.x86_64.rpm"))
}

// TestDropLostEvents: with every change notification lost (NFS), the
// periodic scan imports the file.
func TestDropLostEvents(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	w := e.start(nil, Options{noNotify: true, Rescan: 200 * time.Millisecond})
	write(t, filepath.Join(dir, "unseen-1.0-1.x86_64.rpm"), rpmFile(t, "unseen", "1.0", "unseen"))
	e.waitPackages("el9", 1)
	waitGone(t, filepath.Join(dir, "unseen-1.0-1.x86_64.rpm"))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.folders["el9"].notify != nil {
		t.Error("notifications were on")
	}
}

// stallingService is the repository service with bodies that stop after
// some bytes until the import is cancelled.
type stallingService struct {
	*repo.Service
	reading chan struct{}
	once    sync.Once
}

func (s *stallingService) Ingest(ctx context.Context, u repo.Upload) (*repo.Result, error) {
	u.Body = &stallReader{ctx: ctx, r: u.Body, stalled: func() { s.once.Do(func() { close(s.reading) }) }}
	return s.Service.Ingest(ctx, u)
}

type stallReader struct {
	ctx     context.Context
	r       io.Reader
	n       int
	stalled func()
}

func (s *stallReader) Read(p []byte) (int, error) {
	const after = 1024
	if s.n >= after {
		s.stalled()
		<-s.ctx.Done()
		return 0, s.ctx.Err()
	}
	p = p[:min(len(p), after-s.n)]
	n, err := s.r.Read(p)
	s.n += n
	return n, err
}

// TestDropShutdownMidImport: an import cut short by shutdown leaves the
// file where it was; the next start imports it.
func TestDropShutdownMidImport(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	stalling := &stallingService{Service: e.svc, reading: make(chan struct{})}
	w := e.start(stalling, Options{})
	name := filepath.Join(dir, "cut-1.0-1.x86_64.rpm")
	data := rpmFile(t, "cut", "1.0", strings.Repeat("cut short ", 1000))
	write(t, name, data)
	select {
	case <-stalling.reading:
	case <-time.After(testTimeout):
		t.Fatal("the import did not start")
	}
	w.Close()
	if b, err := os.ReadFile(name); err != nil || sha(b) != sha(data) {
		t.Fatalf("after shutdown the file is gone or changed: %v", err)
	}
	if exist(filepath.Join(dir, rejectedDir)) || len(e.packages("el9")) != 0 {
		t.Fatal("the interrupted import rejected or stored something")
	}
	e.metrics.want(t, "el9", map[string]int{ResultRetry: 1})

	e.start(nil, Options{})
	e.waitPackages("el9", 1)
	waitGone(t, name)
}

// TestDropFollowsRepositories: a repository created, moved to another
// folder or deleted while the watcher runs is watched, moved or dropped
// at once.
func TestDropFollowsRepositories(t *testing.T) {
	e := newEnv(t)
	w := e.start(nil, Options{})
	folderOf := func(name string) string {
		w.mu.Lock()
		defer w.mu.Unlock()
		if f := w.folders[name]; f != nil {
			return f.dir
		}
		return ""
	}
	dir := e.createRepo("late", "rpm", nil)
	write(t, filepath.Join(dir, "a-1.0-1.x86_64.rpm"), rpmFile(t, "a", "1.0", "a"))
	e.waitPackages("late", 1)

	moved := filepath.Join(e.base, "moved")
	patch, _ := json.Marshal(map[string]string{"watch_dir": moved})
	if _, err := e.svc.UpdateRepoConfig(context.Background(), "late", patch); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(moved); err != nil || !fi.IsDir() {
		t.Fatalf("the new watch_dir was not created: %v", err)
	}
	waitFor(t, "the watcher to move", func() bool { return folderOf("late") == moved })
	write(t, filepath.Join(dir, "old-1.0-1.x86_64.rpm"), rpmFile(t, "old", "1.0", "old"))
	write(t, filepath.Join(moved, "b-1.0-1.x86_64.rpm"), rpmFile(t, "b", "1.0", "b"))
	ps := e.waitPackages("late", 2)
	if ps[1].Name != "b" {
		t.Errorf("imported %s, want b", ps[1].Name)
	}
	if !exist(filepath.Join(dir, "old-1.0-1.x86_64.rpm")) {
		t.Error("the old folder is still watched")
	}

	if err := e.svc.DeleteRepo(context.Background(), "late"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to stop", func() bool { return folderOf("late") == "" })
}

// TestDropLeavesOtherFiles: files of other names, symbolic links and
// subdirectories of an rpm folder stay where they are.
func TestDropLeavesOtherFiles(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("el9", "rpm", nil)
	outside := filepath.Join(e.base, "outside-1.0-1.x86_64.rpm")
	write(t, outside, rpmFile(t, "outside", "1.0", "outside"))
	write(t, filepath.Join(dir, "README"), []byte("drop rpms here"))
	write(t, filepath.Join(dir, "sub", "nested-1.0-1.x86_64.rpm"), rpmFile(t, "nested", "1.0", "nested"))
	if err := os.Symlink(outside, filepath.Join(dir, "link-1.0-1.x86_64.rpm")); err != nil {
		t.Fatal(err)
	}
	e.start(nil, Options{})
	write(t, filepath.Join(dir, "other.deb"), debFile(t, "other", "1.0"))
	write(t, filepath.Join(dir, "marker-1.0-1.x86_64.rpm"), rpmFile(t, "marker", "1.0", "marker"))
	ps := e.waitPackages("el9", 1)
	if ps[0].Name != "marker" {
		t.Errorf("imported %s", ps[0].Name)
	}
	waitGone(t, filepath.Join(dir, "marker-1.0-1.x86_64.rpm"))
	for _, p := range []string{"README", "sub/nested-1.0-1.x86_64.rpm", "link-1.0-1.x86_64.rpm", "other.deb"} {
		if !exist(filepath.Join(dir, p)) {
			t.Errorf("%s was moved or deleted", p)
		}
	}
	if !exist(outside) || exist(filepath.Join(dir, rejectedDir)) {
		t.Error("the link's target was touched, or something was rejected")
	}
	e.metrics.want(t, "el9", map[string]int{ResultImported: 1})
}

// TestDropPacmanSignature: a pacman package's detached signature goes
// with it; a signature without its package waits for it.
func TestDropPacmanSignature(t *testing.T) {
	e := newEnv(t)
	dir := e.createRepo("pac", "arch", nil)
	e.start(nil, Options{})
	write(t, filepath.Join(dir, "foo-1-1-any.pkg.tar.zst"), []byte("foo 1\npayload"))
	write(t, filepath.Join(dir, "foo-1-1-any.pkg.tar.zst.sig"), []byte("foo's signature"))
	write(t, filepath.Join(dir, "bar-1-1-any.pkg.tar.zst.sig"), []byte("bar's signature"))
	e.waitPackages("pac", 1)
	waitGone(t, filepath.Join(dir, "foo-1-1-any.pkg.tar.zst.sig"))
	waitGone(t, filepath.Join(dir, "foo-1-1-any.pkg.tar.zst"))
	if !exist(filepath.Join(dir, "bar-1-1-any.pkg.tar.zst.sig")) {
		t.Fatal("a signature without its package was moved or deleted")
	}
	write(t, filepath.Join(dir, "bar-1-1-any.pkg.tar.zst"), []byte("bar 1\npayload"))
	ps := e.waitPackages("pac", 2)
	waitGone(t, filepath.Join(dir, "bar-1-1-any.pkg.tar.zst.sig"))

	ids := []int64{ps[0].ID, ps[1].ID}
	frags, err := e.db.Fragments(context.Background(), ps[0].RepoID, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		want := p.Name + " sig=" + base64.StdEncoding.EncodeToString([]byte(p.Name+"'s signature")) + "\n"
		if got := string(frags[ids[i]]["db"]); got != want {
			t.Errorf("%s: fragment %q, want %q", p.Name, got, want)
		}
	}
	e.metrics.want(t, "pac", map[string]int{ResultImported: 2})
}
