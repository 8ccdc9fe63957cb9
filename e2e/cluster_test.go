package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/packyard/packyard/internal/testengine"
)

// cluster is one PostgreSQL database and one MinIO bucket that several
// packyard nodes share, with a shared key directory and admin token.
type cluster struct {
	t      *testing.T
	dsn    string
	s3     testengine.S3
	keys   string
	token  string
	prefix string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{t: t, dsn: testengine.Postgres(t), s3: testengine.MinIO(t), keys: t.TempDir(), token: randomToken(t), prefix: "site1"}
}

// blobsURL is the node's --blobs setting.
func (c *cluster) blobsURL() string {
	return "s3://" + c.s3.Bucket + "/" + c.prefix + "?endpoint=" + url.QueryEscape(c.s3.Endpoint) + "&region=us-east-1"
}

// env is the environment of a node (and of CLI maintenance commands).
func (c *cluster) env(extra ...string) []string {
	return append([]string{
		"PACKYARD_DATABASE=" + c.dsn, "PACKYARD_BLOBS=" + c.blobsURL(),
		"AWS_ACCESS_KEY_ID=" + c.s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + c.s3.SecretKey,
		"PACKYARD_KEY_DIR=" + c.keys, "PACKYARD_ADMIN_TOKEN=" + c.token,
	}, extra...)
}

// node starts a packyard server on the cluster's stores.
func (c *cluster) node() *server {
	c.t.Helper()
	s := startServerEnv(c.t, c.t.TempDir(), c.env()...)
	s.token = c.token
	return s
}

// maint runs a CLI maintenance command (verify, gc, migrate) on the
// cluster's stores.
func (c *cluster) maint(args ...string) (string, string, int) {
	c.t.Helper()
	return run(c.t, cleanEnv(append(c.env(), "HOME="+c.t.TempDir())...), nil, packyardBin, append(args, "--data", c.t.TempDir())...)
}

// minio is a client of the cluster's bucket, to reach behind packyard.
func (c *cluster) minio() *minio.Client {
	c.t.Helper()
	u, err := url.Parse(c.s3.Endpoint)
	if err != nil {
		c.t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(c.s3.AccessKey, c.s3.SecretKey, ""), Secure: false, Region: "us-east-1"})
	if err != nil {
		c.t.Fatal(err)
	}
	return mc
}

func (c *cluster) objectKey(digest string) string {
	return c.prefix + "/sha256/" + digest[:2] + "/" + digest
}

// TestDNFOnPostgresS3 is TestDNF against a node on PostgreSQL and MinIO.
func TestDNFOnPostgresS3(t *testing.T) {
	// Not parallel: these tests load the machine (PostgreSQL, MinIO, several
	// servers) and run before the parallel ones, which have timing of their own.
	c := newCluster(t)
	dnfScenario(t, c.node)
}

// indexFiles fetches repomd.xml and every file it names from a node.
func indexFiles(t *testing.T, s *server, repo string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{"repodata/repomd.xml": s.get(t, "/"+repo+"/repodata/repomd.xml")}
	md := fetchRepomd(t, s, repo)
	for _, d := range md.Data {
		out[d.Location.Href] = fetchData(t, s, repo, d)
	}
	return out
}

// TestTwoNodes: two nodes on one PostgreSQL and MinIO take 200 concurrent
// uploads spread across both; every one is in the final generation, both
// nodes serve identical index files, nothing answers 5xx; an upload on one
// node is served by the other within a second and installed from it by dnf.
func TestTwoNodes(t *testing.T) {
	c := newCluster(t)
	a := c.node()
	b := c.node()
	const repo, n = "shared", 200
	a.createRepo(t, repo)

	pkgs := make([]builtRPM, n)
	for i := range pkgs {
		pkgs[i] = buildRPM(t, pkgName("node", i), "1.0", pkgOpts{payload: 512})
	}
	var fail atomic.Int32
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, p := range pkgs {
		s := []*server{a, b}[i%2]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code, _, body, err := s.putPackage(repo, p.file, bytes.NewReader(p.data), int64(len(p.data)), nil)
			if err != nil || code != http.StatusCreated {
				fail.Add(1)
				t.Errorf("PUT %s to node %d: %d %v %s", p.file, i%2, code, err, body)
			}
		})
	}
	wg.Wait()
	if fail.Load() > 0 {
		t.FailNow()
	}

	// Both nodes converge on the same generation, with all 200.
	deadline := time.Now().Add(5 * time.Second)
	var ia, ib map[string][]byte
	for {
		ia, ib = indexFiles(t, a, repo), indexFiles(t, b, repo)
		if bytes.Equal(ia["repodata/repomd.xml"], ib["repodata/repomd.xml"]) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(ia) != len(ib) {
		t.Fatalf("node A serves %d index files, node B %d", len(ia), len(ib))
	}
	for p, body := range ia {
		if !bytes.Equal(body, ib[p]) {
			t.Errorf("%s differs between the nodes", p)
		}
	}
	for _, s := range []*server{a, b} {
		got := verifyGeneration(t, s, repo)
		if len(got) != n {
			t.Errorf("%s: the generation lists %d packages, want %d", s.url, len(got), n)
		}
	}

	// An upload on A is served by B within a second.
	late := buildRPM(t, "node-late", "1.0", pkgOpts{})
	a.mustPut(t, repo, late)
	want := a.get(t, "/"+repo+"/repodata/repomd.xml")
	start := time.Now()
	for !bytes.Equal(b.get(t, "/"+repo+"/repodata/repomd.xml"), want) {
		if time.Since(start) > time.Second {
			t.Fatalf("node B does not serve node A's new generation after %s", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("node B served node A's generation %s after the upload was answered", time.Since(start).Round(time.Millisecond))
	dnf := newDNFRoot(t)
	dnf.run(t, fromPath("nodeb", b.url+"/"+repo+"/"), "--refresh", "install", late.name)
	dnf.requireInstalled(t, late)

	// The change feed is the same on both nodes.
	feed := func(s *server) string {
		var evs []map[string]any
		s.apiJSON(t, http.MethodGet, "/api/v1/events?since=0&follow=false", nil, http.StatusOK, &evs)
		var b strings.Builder
		for _, e := range evs {
			fmt.Fprintln(&b, e["seq"], e["type"], e["repo"])
		}
		return b.String()
	}
	if fa, fb := feed(a), feed(b); fa != fb || fa == "" {
		t.Errorf("the nodes' change feeds differ:\n%s\n---\n%s", fa, fb)
	}
}

// TestNodeKill9: one node is killed while both take uploads; the other
// keeps serving and accepting, every acknowledged upload is published, and
// verify finds no generation naming a missing blob.
func TestNodeKill9(t *testing.T) {
	c := newCluster(t)
	a := c.node()
	b := c.node()
	const repo, n = "survivor", 60
	a.createRepo(t, repo)
	pkgs := make([]builtRPM, n)
	for i := range pkgs {
		pkgs[i] = buildRPM(t, pkgName("kill", i), "1.0", pkgOpts{payload: 64 << 10})
	}
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for i, p := range pkgs {
		s := []*server{a, b}[i%2]
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 5 * time.Millisecond)
			code, _, _, _ := s.putPackage(repo, p.file, bytes.NewReader(p.data), int64(len(p.data)), nil)
			if code == http.StatusCreated {
				mu.Lock()
				acked = append(acked, p.name)
				mu.Unlock()
			} else if s == b {
				t.Errorf("PUT %s to the surviving node: %d", p.file, code)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	a.kill9()
	wg.Wait()
	// B still accepts and serves.
	after := buildRPM(t, "kill-after", "1.0", pkgOpts{})
	b.mustPut(t, repo, after)
	acked = append(acked, after.name)

	listed := map[string]bool{}
	for _, p := range verifyGeneration(t, b, repo) {
		listed[p.Name] = true
	}
	for _, name := range acked {
		if !listed[name] {
			t.Errorf("acknowledged upload %s is not in the generation node B serves", name)
		}
	}
	t.Logf("%d uploads acknowledged of %d tried", len(acked), n+1)
	out, errOut, code := c.maint("verify", "--skip-rehash")
	if code != 0 {
		t.Errorf("packyard verify after the kill: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestVerifyOnS3: verify finds a blob corrupted in the bucket and a
// generation naming a deleted blob.
func TestVerifyOnS3(t *testing.T) {
	c := newCluster(t)
	s := c.node()
	const repo = "checked"
	s.createRepo(t, repo)
	p1 := buildRPM(t, "checked-one", "1.0", pkgOpts{})
	p2 := buildRPM(t, "checked-two", "1.0", pkgOpts{})
	s.mustPut(t, repo, p1)
	s.mustPut(t, repo, p2)
	if out, errOut, code := c.maint("verify"); code != 0 || !strings.Contains(out, "no problems found") {
		t.Fatalf("verify of an intact installation: exit %d\n%s\n%s", code, out, errOut)
	}
	mc := c.minio()
	ctx := context.Background()
	if _, err := mc.PutObject(ctx, c.s3.Bucket, c.objectKey(p1.sha256), bytes.NewReader([]byte("rotten")), 6, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// repomd.xml is stored whole: its blob's name is the digest of what
	// the server serves.
	sum := sha256.Sum256(s.get(t, "/"+repo+"/repodata/repomd.xml"))
	victim := hex.EncodeToString(sum[:])
	if err := mc.RemoveObject(ctx, c.s3.Bucket, c.objectKey(victim), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := c.maint("verify")
	if code == 0 {
		t.Fatalf("verify of a damaged installation: exit 0\n%s", out)
	}
	for _, want := range []string{"corrupt blob " + p1.sha256, "missing blob " + victim, "repodata/repomd.xml", "package Packages/"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s\n%s", want, out, errOut)
		}
	}
}

// TestMigrateRoundTrip: SQLite+files → PostgreSQL+S3 → SQLite+files leaves
// every repository byte-identical, served by a server on each.
func TestMigrateRoundTrip(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	const repo = "moving"
	s.createRepo(t, repo)
	var pkgs []builtRPM
	for i := range 5 {
		p := buildRPM(t, pkgName("moving", i), "1.0", pkgOpts{payload: 4096})
		s.mustPut(t, repo, p)
		pkgs = append(pkgs, p)
	}
	before := indexFiles(t, s, repo)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	c := newCluster(t)
	env := cleanEnv(append(c.env(), "HOME="+t.TempDir())...)
	migrate := func(args ...string) {
		t.Helper()
		out, errOut, code := run(t, env, nil, packyardBin, append([]string{"migrate"}, args...)...)
		if code != 0 || !strings.Contains(out, "verified") {
			t.Fatalf("packyard migrate %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	migrate("--data", data, "--database", "sqlite:"+data+"/packyard.db", "--blobs", "file:"+data+"/blobs",
		"--to-database", c.dsn, "--to-blobs", c.blobsURL())
	back := t.TempDir()
	migrate("--data", back, "--database", c.dsn, "--blobs", c.blobsURL(),
		"--to-database", "sqlite:"+back+"/packyard.db", "--to-blobs", "file:"+back+"/blobs")

	// Served from PostgreSQL+S3, and from the copy back.
	for _, srv := range []*server{c.node(), startServerEnv(t, back, "PACKYARD_KEY_DIR="+data+"/keys")} {
		after := indexFiles(t, srv, repo)
		if len(after) != len(before) {
			t.Fatalf("%s serves %d index files, want %d", srv.url, len(after), len(before))
		}
		for p, body := range before {
			if !bytes.Equal(after[p], body) {
				t.Errorf("%s: %s differs after the migration", srv.url, p)
			}
		}
		for _, p := range pkgs {
			if got := srv.get(t, "/"+repo+"/Packages/"+strings.ToLower(p.file[:1])+"/"+p.file); !bytes.Equal(got, p.data) {
				t.Errorf("%s: package %s differs after the migration", srv.url, p.file)
			}
		}
	}
}

// TestPresignedReads: with s3_presign_reads on, a GET of a package of
// 1 MiB or more is redirected to a presigned MinIO URL that yields the exact
// bytes, and dnf installs through it; smaller packages and every index file
// are served by the node itself; a node with the option off redirects
// nothing.
func TestPresignedReads(t *testing.T) {
	c := newCluster(t)
	on := startServerEnv(t, t.TempDir(), c.env("PACKYARD_S3_PRESIGN_READS=true")...)
	on.token = c.token
	off := c.node()
	const repo = "presigned"
	on.createRepo(t, repo)
	big := buildRPM(t, "presign-big", "1.0", pkgOpts{payload: 3 << 19}) // 1.5 MiB
	small := buildRPM(t, "presign-small", "1.0", pkgOpts{payload: 4 << 10})
	if len(big.data) < 1<<20 || len(small.data) >= 1<<20 {
		t.Fatalf("test packages of %d and %d bytes do not straddle 1 MiB", len(big.data), len(small.data))
	}
	on.mustPut(t, repo, big)
	on.mustPut(t, repo, small)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(u string) (*http.Response, []byte) {
		t.Helper()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		return resp, b
	}

	resp, _ := fetch(on.url + pkgPath(repo, big))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, c.s3.Endpoint+"/") || !strings.Contains(loc, c.objectKey(big.sha256)) || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("GET of a 1.5 MiB package: %s, Location %q; want 302 to a presigned URL of %s under %s", resp.Status, loc, c.objectKey(big.sha256), c.s3.Endpoint)
	}
	if resp, b := fetch(loc); resp.StatusCode != http.StatusOK || !bytes.Equal(b, big.data) {
		t.Errorf("the presigned URL: %s, %d bytes; want 200 and the package's %d bytes", resp.Status, len(b), len(big.data))
	}
	if resp, b := fetch(on.url + pkgPath(repo, small)); resp.StatusCode != http.StatusOK || !bytes.Equal(b, small.data) {
		t.Errorf("GET of a small package: %s, %d bytes; want it served, not redirected", resp.Status, len(b))
	}
	for p := range indexFiles(t, on, repo) {
		if resp, _ := fetch(on.url + "/" + repo + "/" + p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s; index files are served, never redirected", p, resp.Status)
		}
	}
	// The node without the option streams it, once it serves the generation.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, b := fetch(off.url + pkgPath(repo, big))
		if resp.StatusCode == http.StatusOK && bytes.Equal(b, big.data) {
			break
		}
		if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("GET of the package from the node without presigned reads: %s, %d bytes; want 200 and its bytes", resp.Status, len(b))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// dnf follows the redirect.
	dnf := newDNFRoot(t)
	dnf.run(t, fromPath("presigned", on.url+"/"+repo+"/"), "install", big.name, small.name)
	dnf.requireInstalled(t, big)
	dnf.requireInstalled(t, small)
}

// gcDeleted matches the count of deleted blobs in packyard gc's report.
var gcDeleted = regexp.MustCompile(`, deleted (\d+) \(`)

// TestGCDuringUploads: packyard gc runs, with a grace period of seconds,
// again and again while two nodes take uploads. No acknowledged package
// loses its blob, verify passes, and blobs nothing names that are older
// than the grace period are deleted.
func TestGCDuringUploads(t *testing.T) {
	c := newCluster(t)
	a := c.node()
	b := c.node()
	const repo, n, grace = "collected", 80, 3 * time.Second
	a.createRepo(t, repo)

	// Blobs that nothing names, as uploads that failed leave them.
	mc := c.minio()
	ctx := context.Background()
	orphans := map[string]bool{}
	for i := range 6 {
		body := []byte(fmt.Sprintf("orphan %d %s", i, randomToken(t)))
		sum := sha256.Sum256(body)
		d := hex.EncodeToString(sum[:])
		if _, err := mc.PutObject(ctx, c.s3.Bucket, c.objectKey(d), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		orphans[d] = true
	}
	orphanedAt := time.Now()
	pkgs := buildSet(t, "gc", n, 16<<10)
	// Last-Modified has one-second resolution.
	time.Sleep(time.Until(orphanedAt.Add(grace + 1100*time.Millisecond)))

	var fail atomic.Int32
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i, p := range pkgs {
		s := []*server{a, b}[i%2]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code, _, body, err := s.putPackage(repo, p.file, bytes.NewReader(p.data), int64(len(p.data)), nil)
			if err != nil || code != http.StatusCreated {
				fail.Add(1)
				t.Errorf("PUT %s to node %d: %d %v %s", p.file, i%2, code, err, body)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	gc := func() int {
		t.Helper()
		out, errOut, code := c.maint("gc", "--grace", grace.String())
		m := gcDeleted.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("packyard gc: exit %d\n%s\n%s", code, out, errOut)
		}
		k, _ := strconv.Atoi(m[1])
		return k
	}
	runs, deleted := 0, 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		deleted += gc()
		runs++
	}
	if fail.Load() > 0 {
		t.FailNow()
	}
	t.Logf("%d gc runs during the uploads deleted %d blobs (%d planted orphans)", runs, deleted, len(orphans))
	if runs < 2 {
		t.Errorf("gc ran %d times during the uploads; want it to overlap them", runs)
	}
	if deleted < len(orphans) {
		t.Errorf("gc deleted %d blobs, fewer than the %d orphans", deleted, len(orphans))
	}
	for d := range orphans {
		if _, err := mc.StatObject(ctx, c.s3.Bucket, c.objectKey(d), minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Errorf("orphan blob %s: stat says %v, want it deleted", d, err)
		}
	}

	check := func(when string) {
		t.Helper()
		for _, s := range []*server{a, b} {
			listed := byName(verifyGeneration(t, s, repo))
			for _, p := range pkgs {
				if g, ok := listed[p.name]; !ok || g.Checksum.Value != p.sha256 {
					t.Errorf("%s: %s does not serve acknowledged upload %s %s", when, s.url, p.file, when)
				}
			}
		}
		if out, errOut, code := c.maint("verify"); code != 0 || !strings.Contains(out, "no problems found") {
			t.Errorf("packyard verify %s: exit %d\n%s\n%s", when, code, out, errOut)
		}
	}
	check("after gc ran during the uploads")
	// Once everything is older than the grace period, gc removes what old
	// generations alone named, and nothing that is served.
	time.Sleep(grace + 1100*time.Millisecond)
	t.Logf("gc after the uploads deleted %d more blobs", gc())
	check("after a final gc")
}
