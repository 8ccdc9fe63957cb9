package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/testengine"
)

// Outage tests: a backend (PostgreSQL, MinIO) goes away while a node
// serves reads and takes uploads. Like the other cluster tests they do not
// run in parallel: stopping an engine affects every test that uses it.

// recoveryBound is how long after a backend returns a node must serve
// reads and accept uploads again.
const recoveryBound = 10 * time.Second

// hangBound is how long any one request may take during an outage, and
// requestLimit when a client gives up on one (a transport error, counted as
// a problem).
const hangBound, requestLimit = 10 * time.Second, 30 * time.Second

// outageNode starts a node that may log errors (its backend goes away).
func (c *cluster) outageNode(extra ...string) *server {
	c.t.Helper()
	s := startServerEnv(c.t, c.t.TempDir(), c.env(extra...)...)
	s.token = c.token
	s.allowErrors = true
	c.t.Cleanup(func() {
		// Errors are allowed, internal errors are not: a request that
		// failed with 500 logs "request failed" at ERROR.
		for _, l := range s.logs.grep(`"level":"ERROR"`) {
			if strings.Contains(l, `"msg":"request failed"`) {
				c.t.Errorf("a request failed with an internal error during the outage: %s", l)
			}
		}
	})
	return s
}

// pkgPath is the URL path of an uploaded package in an rpm repository.
func pkgPath(repo string, p builtRPM) string {
	return "/" + repo + "/Packages/" + strings.ToLower(p.file[:1]) + "/" + p.file
}

// traffic runs readers and uploaders against one node and checks every
// answer: a success with the exact bytes, or a clean 503.
type traffic struct {
	t      *testing.T
	s      *server
	repo   string
	reads  []builtRPM     // published packages the readers fetch
	queue  chan builtRPM  // packages the uploaders take
	hc     *http.Client   // with requestLimit, no redirects
	stop   chan struct{}  // closed to end the run
	wg     sync.WaitGroup // readers and uploaders
	maxLat atomic.Int64   // slowest request, ns

	mu       sync.Mutex
	acked    []builtRPM
	counts   map[string]int // "upload 201", "read-pkg 503", …
	problems []string
}

func newTraffic(t *testing.T, s *server, repo string, reads, uploads []builtRPM) *traffic {
	tr := &traffic{
		t: t, s: s, repo: repo, reads: reads,
		queue:  make(chan builtRPM, len(uploads)),
		stop:   make(chan struct{}),
		counts: map[string]int{},
		hc: &http.Client{
			Timeout:       requestLimit,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, p := range uploads {
		tr.queue <- p
	}
	close(tr.queue)
	return tr
}

// start runs readers and uploaders until end.
func (tr *traffic) start(readers, uploaders int) {
	for i := range readers {
		tr.wg.Go(func() { tr.reader(i) })
	}
	for range uploaders {
		tr.wg.Go(tr.uploader)
	}
}

// end stops the traffic and waits for requests in flight.
func (tr *traffic) end() {
	close(tr.stop)
	tr.wg.Wait()
	tr.hc.CloseIdleConnections()
}

func (tr *traffic) stopped() bool {
	select {
	case <-tr.stop:
		return true
	default:
		return false
	}
}

func (tr *traffic) problem(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.problems) < 50 {
		tr.problems = append(tr.problems, fmt.Sprintf(format, args...))
	}
}

func (tr *traffic) count(kind string, code int) {
	tr.mu.Lock()
	tr.counts[fmt.Sprintf("%s %d", kind, code)]++
	tr.mu.Unlock()
}

// n returns how many answers of kind had status code.
func (tr *traffic) n(kind string, code int) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.counts[fmt.Sprintf("%s %d", kind, code)]
}

// do sends one request and returns its status and whole body; a transport
// error, a truncated body or a request slower than requestLimit is a
// problem (status 0).
func (tr *traffic) do(kind string, req *http.Request) (int, []byte) {
	start := time.Now()
	resp, err := tr.hc.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	lat := time.Since(start)
	for {
		cur := tr.maxLat.Load()
		if int64(lat) <= cur || tr.maxLat.CompareAndSwap(cur, int64(lat)) {
			break
		}
	}
	if err != nil {
		tr.problem("%s %s: %v after %s", req.Method, req.URL.Path, err, lat.Round(time.Millisecond))
		tr.count(kind, 0)
		return 0, nil
	}
	tr.count(kind, resp.StatusCode)
	if resp.StatusCode == http.StatusServiceUnavailable {
		if msg := cleanUnavailable(resp, body); msg != "" {
			tr.problem("%s %s: 503 %s", req.Method, req.URL.Path, msg)
		}
	}
	return resp.StatusCode, body
}

// cleanUnavailable returns what is wrong with a 503 answer, or "": it must
// say when to retry and carry a JSON error that names the backend.
func cleanUnavailable(resp *http.Response, body []byte) string {
	if resp.Header.Get("Retry-After") == "" {
		return "without Retry-After"
	}
	var e struct{ Error, Code string }
	if err := json.Unmarshal(body, &e); err != nil || e.Code != "unavailable" || !strings.Contains(e.Error, "unavailable") {
		return fmt.Sprintf("with an unclear body %q", body)
	}
	return ""
}

// reader fetches, in turn, repomd.xml, the primary it names, and a package.
func (tr *traffic) reader(i int) {
	for n := i; !tr.stopped(); n++ {
		code, md := tr.get("read-index", "/"+tr.repo+"/repodata/repomd.xml")
		var primary repomdData
		if code == http.StatusOK {
			var doc repomd
			if err := xml.Unmarshal(md, &doc); err != nil || len(doc.Data) == 0 {
				tr.problem("repomd.xml: a 200 answer that is not a whole repomd.xml (%v): %q", err, md)
			}
			for _, d := range doc.Data {
				if d.Type == "primary" {
					primary = d
				}
			}
		}
		if primary.Location.Href != "" {
			code, b := tr.get("read-primary", "/"+tr.repo+"/"+primary.Location.Href)
			if code == http.StatusOK && sha256hex(b) != primary.Checksum.Value {
				tr.problem("%s: a 200 answer whose sha256 is not the one repomd.xml names", primary.Location.Href)
			}
		}
		p := tr.reads[n%len(tr.reads)]
		if code, b := tr.get("read-pkg", pkgPath(tr.repo, p)); code == http.StatusOK && !bytes.Equal(b, p.data) {
			tr.problem("%s: a 200 answer with other bytes (%d, want %d)", p.file, len(b), len(p.data))
		}
	}
}

// get fetches a path; anything but 200 or a clean 503 is a problem.
func (tr *traffic) get(kind, path string) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, tr.s.url+path, nil)
	if err != nil {
		tr.t.Error(err)
		return 0, nil
	}
	code, b := tr.do(kind, req)
	if code != 0 && code != http.StatusOK && code != http.StatusServiceUnavailable {
		tr.problem("GET %s: %d %s", path, code, b)
	}
	return code, b
}

// uploader uploads packages from the queue, one at a time, until the queue
// is empty or the run ends; a package refused with 503 is not retried.
func (tr *traffic) uploader() {
	for p := range tr.queue {
		if tr.stopped() {
			return
		}
		if tr.put(p) == http.StatusServiceUnavailable {
			time.Sleep(50 * time.Millisecond) // as a client honouring Retry-After would, briefly
		}
	}
}

// put uploads one package and records it if it was acknowledged.
func (tr *traffic) put(p builtRPM) int {
	req, err := http.NewRequest(http.MethodPut, tr.s.url+"/api/v1/repos/"+url.PathEscape(tr.repo)+"/packages/"+url.PathEscape(p.file), bytes.NewReader(p.data))
	if err != nil {
		tr.t.Error(err)
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+tr.s.token)
	code, b := tr.do("upload", req)
	switch code {
	case http.StatusCreated:
		tr.mu.Lock()
		tr.acked = append(tr.acked, p)
		tr.mu.Unlock()
	case 0, http.StatusServiceUnavailable:
	default:
		tr.problem("PUT %s: %d %s", p.file, code, b)
	}
	return code
}

// report fails the test for every problem seen and logs the counts.
func (tr *traffic) report() {
	tr.t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.t.Logf("answers: %v; slowest request %s; %d uploads acknowledged",
		tr.counts, time.Duration(tr.maxLat.Load()).Round(time.Millisecond), len(tr.acked))
	for _, p := range tr.problems {
		tr.t.Error(p)
	}
	if slowest := time.Duration(tr.maxLat.Load()); slowest > hangBound {
		tr.t.Errorf("the slowest request took %s; an outage must fail requests, not hold them (bound %s)", slowest, hangBound)
	}
}

// awaitRecovery probes the node after its backend returned at since:
// first a read of repomd.xml, then an upload of probe, each retried until
// it succeeds. It fails the test unless both succeed within recoveryBound
// and returns the time from since until the upload was acknowledged.
func (tr *traffic) awaitRecovery(since time.Time, probe builtRPM) time.Duration {
	tr.t.Helper()
	var readAt time.Duration
	for {
		if code, _ := tr.get("probe-read", "/"+tr.repo+"/repodata/repomd.xml"); code == http.StatusOK {
			readAt = time.Since(since)
			break
		}
		if time.Since(since) > recoveryBound {
			tr.t.Fatalf("reads still fail %s after the backend returned", time.Since(since).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for tr.put(probe) != http.StatusCreated {
		if time.Since(since) > recoveryBound {
			tr.t.Fatalf("uploads still fail %s after the backend returned", time.Since(since).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(since)
	tr.t.Logf("recovered: reads after %s, uploads after %s", readAt.Round(time.Millisecond), took.Round(time.Millisecond))
	return took
}

// checkPublished fails the test unless every acknowledged upload is in the
// generation the node serves (whose every file and package matches its
// checksum), and every package the API lists is in it too: nothing
// half-written is left behind.
func (tr *traffic) checkPublished() {
	tr.t.Helper()
	listed := byName(verifyGeneration(tr.t, tr.s, tr.repo))
	for _, p := range tr.acked {
		if g, ok := listed[p.name]; !ok || g.Checksum.Value != p.sha256 {
			tr.t.Errorf("acknowledged upload %s is not in the published generation", p.file)
		}
	}
	for _, p := range tr.s.packages(tr.t, tr.repo) {
		if g, ok := listed[p.Name]; !ok || g.Checksum.Value != p.SHA256 {
			tr.t.Errorf("package %s is recorded but not published", p.Path)
		}
	}
}

// noLeftovers fails the test if the node's data directory holds temporary
// files of writes that never finished.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && (strings.Contains(name, ".tmp") || strings.HasPrefix(name, "put-") || strings.HasPrefix(name, "packyard-s3blob-")) {
			t.Errorf("leftover temporary file %s", p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Error(err)
	}
}

// buildSet builds n packages named prefix-NNN.
func buildSet(t *testing.T, prefix string, n, payload int) []builtRPM {
	t.Helper()
	out := make([]builtRPM, n)
	for i := range out {
		out[i] = buildRPM(t, pkgName(prefix, i), "1.0", pkgOpts{payload: payload})
	}
	return out
}

// TestPostgresRestart: PostgreSQL stops for a few seconds while a node
// serves reads and takes uploads. Every answer is a success with the right
// bytes or a clean 503; the node recovers by itself; every acknowledged
// upload is published and verify finds nothing wrong.
func TestPostgresRestart(t *testing.T) {
	c := newCluster(t)
	s := c.outageNode()
	const repo = "pgdown"
	s.createRepo(t, repo)
	base := buildSet(t, "pgbase", 8, 8<<10)
	for _, p := range base {
		s.mustPut(t, repo, p)
	}
	tr := newTraffic(t, s, repo, base, buildSet(t, "pgup", 400, 8<<10))
	probe := buildRPM(t, "pgprobe", "1.0", pkgOpts{})

	tr.start(3, 3)
	time.Sleep(1500 * time.Millisecond)
	before := tr.n("upload", http.StatusCreated)
	down := true
	testengine.PostgresStop(t)
	t.Cleanup(func() {
		if down {
			testengine.PostgresStart(t)
		}
	})
	stoppedAt := time.Now()
	time.Sleep(3 * time.Second)
	refused := tr.n("upload", http.StatusServiceUnavailable)
	testengine.PostgresStart(t)
	down = false
	t.Logf("PostgreSQL was down for %s", time.Since(stoppedAt).Round(time.Millisecond))
	took := tr.awaitRecovery(time.Now(), probe)
	time.Sleep(1500 * time.Millisecond)
	tr.end()
	tr.report()
	if before == 0 || refused == 0 {
		t.Errorf("the run did not span the outage: %d uploads acknowledged before it, %d refused during it", before, refused)
	}
	if after := tr.n("upload", http.StatusCreated) - before; after < 2 {
		t.Errorf("only %d uploads acknowledged after the outage", after)
	}
	t.Logf("recovery time after PostgreSQL returned: %s (bound %s)", took.Round(time.Millisecond), recoveryBound)

	tr.checkPublished()
	if out, errOut, code := c.maint("verify"); code != 0 || !strings.Contains(out, "no problems found") {
		t.Errorf("packyard verify after the outage: exit %d\n%s\n%s", code, out, errOut)
	}
	noLeftovers(t, s.data)
}

// TestMinIOStop: MinIO is down while a node takes uploads. Uploads fail
// with a clean 503 and leave no record of a missing blob; once MinIO
// returns, uploads succeed and are published; verify finds nothing wrong.
func TestMinIOStop(t *testing.T) {
	c := newCluster(t)
	s := c.outageNode()
	const repo = "s3down"
	s.createRepo(t, repo)
	base := buildSet(t, "s3base", 4, 8<<10)
	for _, p := range base {
		s.mustPut(t, repo, p)
	}
	// Large enough that the body is still on its way when the blob store
	// is found missing.
	tr := newTraffic(t, s, repo, base, buildSet(t, "s3up", 300, 96<<10))
	probe := buildRPM(t, "s3probe", "1.0", pkgOpts{})

	tr.start(2, 3)
	time.Sleep(time.Second)
	before := tr.n("upload", http.StatusCreated)
	testengine.MinIOStop(t)
	stoppedAt := time.Now()
	time.Sleep(3 * time.Second)
	refused := tr.n("upload", http.StatusServiceUnavailable)
	// A direct upload during the outage: its answer says what is wrong.
	late := buildRPM(t, "s3late", "1.0", pkgOpts{})
	code, _, body, err := s.putPackage(repo, late.file, bytes.NewReader(late.data), int64(len(late.data)), nil)
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(body), "blob store unavailable") {
		t.Errorf("upload while MinIO is down: %d %v %s, want 503 naming the blob store", code, err, body)
	}
	testengine.MinIOStart(t)
	t.Logf("MinIO was down for %s", time.Since(stoppedAt).Round(time.Millisecond))
	took := tr.awaitRecovery(time.Now(), probe)
	time.Sleep(time.Second)
	tr.end()
	tr.report()
	if before == 0 || refused == 0 {
		t.Errorf("the run did not span the outage: %d uploads acknowledged before it, %d refused during it", before, refused)
	}
	t.Logf("recovery time after MinIO returned: %s (bound %s)", took.Round(time.Millisecond), recoveryBound)

	// The package refused during the outage uploads now.
	s.mustPut(t, repo, late)
	tr.acked = append(tr.acked, late)
	tr.checkPublished()
	if out, errOut, code := c.maint("verify"); code != 0 || !strings.Contains(out, "no problems found") {
		t.Errorf("packyard verify after the outage: exit %d\n%s\n%s", code, out, errOut)
	}
	noLeftovers(t, s.data)
}
