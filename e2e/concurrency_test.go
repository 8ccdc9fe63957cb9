package e2e

import (
	"bytes"
	"net/http"
	"sync"
	"testing"

	"github.com/packyard/packyard/internal/client"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

// TestConcurrentUploads uploads 200 different packages at once and checks
// that every upload is accepted, that all of them are published, and that
// group commit folded them into far fewer generations than uploads. It then
// publishes again and checks that every file the previous repomd.xml named
// is still served with the same bytes, so a client that read repomd.xml
// just before a publish can finish its download.
func TestConcurrentUploads(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	const repo, n, workers = "farm", 200, 50
	s.createRepo(t, repo)

	// Realistic, varied packages (arches, epochs, dependency kinds); they
	// need things no test repository provides, so they are never installed.
	specs := rpmtest.Corpus(n, 20250301)
	pkgs := make([]builtRPM, n)
	for i, spec := range specs {
		pkgs[i] = buildSpec(t, spec)
	}

	type outcome struct {
		code int
		res  *client.UploadResult
		body []byte
		err  error
	}
	outcomes := make([]outcome, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				p := pkgs[i]
				code, res, body, err := s.putPackage(repo, p.file, bytes.NewReader(p.data), int64(len(p.data)), nil)
				outcomes[i] = outcome{code, res, body, err}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	var maxGen int64
	for i, o := range outcomes {
		switch {
		case o.err != nil:
			t.Errorf("PUT %s: %v", pkgs[i].file, o.err)
		case o.code != http.StatusCreated:
			t.Errorf("PUT %s: status %d, want 201: %s", pkgs[i].file, o.code, o.body)
		case o.res.SHA256 != pkgs[i].sha256 || o.res.Name != pkgs[i].name || o.res.Generation <= 0:
			t.Errorf("PUT %s answered %+v", pkgs[i].file, o.res)
		default:
			maxGen = max(maxGen, o.res.Generation)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	oldMD := fetchRepomd(t, s, repo)
	oldPrimary := parsePrimary(t, fetchData(t, s, repo, oldMD.data(t, "primary")))
	inPrimary := byName(oldPrimary)
	if len(oldPrimary) != n {
		t.Errorf("primary.xml lists %d packages, want %d", len(oldPrimary), n)
	}
	for _, p := range pkgs {
		e, ok := inPrimary[p.name]
		switch {
		case !ok:
			t.Errorf("%s is not in primary.xml", p.name)
		case e.Checksum.Value != p.sha256 || e.nevra() != p.nevra() || e.Version.Epoch != p.epoch:
			t.Errorf("primary.xml has %s:%s with sha256 %s, uploaded %s:%s with %s", e.Version.Epoch, e.nevra(), e.Checksum.Value, p.epoch, p.nevra(), p.sha256)
		}
	}
	if got := len(s.packages(t, repo)); got != n {
		t.Errorf("API lists %d packages, want %d", got, n)
	}
	gen := s.repoInfo(t, repo).CurrentGeneration
	t.Logf("%d concurrent uploads (%d at a time) were published in %d generations", n, workers, gen)
	if gen >= 100 {
		t.Errorf("current_generation is %d after %d concurrent uploads: group commit should need far fewer publishes", gen, n)
	}
	if gen < maxGen {
		t.Errorf("current_generation %d is older than generation %d an upload was answered with", gen, maxGen)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Publish a new generation, then read everything the old repomd.xml
	// named.
	s.mustPut(t, repo, buildRPM(t, "farm-late", "1.0", pkgOpts{}))
	newMD := fetchRepomd(t, s, repo)
	if newMD.data(t, "primary").Location == oldMD.data(t, "primary").Location {
		t.Fatalf("primary.xml is still %s after a publish that added a package", oldMD.data(t, "primary").Location.Href)
	}
	for _, d := range oldMD.Data {
		fetchData(t, s, repo, d)
	}
	for _, p := range oldPrimary {
		verifyPackageFile(t, s, repo, p)
	}

	// The new generation is complete too.
	if got := len(verifyGeneration(t, s, repo)); got != n+1 {
		t.Errorf("new primary.xml lists %d packages, want %d", got, n+1)
	}
}
