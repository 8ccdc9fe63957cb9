package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/client"
	"github.com/packyard/packyard/internal/testengine"
)

// TestMirrorTwoNodes: two nodes on one PostgreSQL and MinIO sync the same
// mirror one at a time. While node A syncs (a slow upstream), node B
// refuses a sync with 409 and says why; once A's sync is done, B's sync
// succeeds without downloading any package again (the blob store is
// shared: nginx's access log counts the requests), and both serve the
// same generation.
func TestMirrorTwoNodes(t *testing.T) {
	c := newCluster(t)
	k := newUpstreamKey(t, "Upstream RPM Archive")
	up := t.TempDir()
	var pkgs []builtRPM
	for i := range 6 {
		pkgs = append(pkgs, buildRPM(t, "twonode"+string(rune('a'+i)), "1.0", pkgOpts{payload: 150 << 10}))
	}
	signedRPMUpstream(t, up, k, pkgs...)
	// 150 KiB at 100 KiB/s: a second or more per package.
	ngx := testengine.StartNginx(t, up, testengine.NginxOptions{LimitRate: "100k"})
	a, b := c.node(), c.node()
	a.mustCLI(t, "repo", "create", "el", "--format", "rpm", "--kind", "mirror", "--upstream", ngx.URL,
		"--upstream-key", k.file, "--concurrency", "2")
	var started client.Sync
	a.apiJSON(t, http.MethodPost, "/api/v1/repos/el/sync", nil, http.StatusAccepted, &started)
	resp, body, err := b.do(http.MethodPost, "/api/v1/repos/el/sync", nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "another node is syncing") {
		t.Fatalf("sync on node B while A syncs: %s %s, want 409 saying another node syncs", resp.Status, body)
	}
	var done client.Sync
	deadline := time.Now().Add(2 * time.Minute)
	for done.Status == "" || done.Status == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("node A's sync did not end: %+v", done)
		}
		a.apiJSON(t, http.MethodGet, "/api/v1/repos/el/syncs/"+itoa(started.ID)+"?wait=10s", nil, http.StatusOK, &done)
	}
	if done.Status != "ok" {
		t.Fatalf("node A's sync: %+v", done)
	}
	before := len(ngx.Access(t))
	var second client.Sync
	b.apiJSON(t, http.MethodPost, "/api/v1/repos/el/sync?wait=true", nil, http.StatusOK, &second)
	if second.Status != "ok" {
		t.Fatalf("node B's sync after A's: %+v", second)
	}
	for _, e := range ngx.Access(t)[before:] {
		if strings.HasSuffix(e.Path, ".rpm") {
			t.Errorf("node B downloaded %s again", e.Path)
		}
	}
	ga, gb := a.repoInfo(t, "el").CurrentGeneration, b.repoInfo(t, "el").CurrentGeneration
	if ga != gb || ga < done.Generation {
		t.Errorf("generations: node A %d, node B %d, A's sync published %d", ga, gb, done.Generation)
	}
	if ma, mb := a.get(t, "/el/repodata/repomd.xml"), b.get(t, "/el/repodata/repomd.xml"); string(ma) != string(mb) {
		t.Error("the nodes serve different repomd.xml")
	}
}
