package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAgentFollows: the agent copies the origin's tree, follows new
// generations within moments, keeps the previous generation's index files
// for the grace period, and reports its position to the origin.
func TestAgentFollows(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	pa, _ := o.upload("el", "a", "1.0")
	a := startAgent(t, testConfig(t, o))
	root := a.cfg.RootDir
	waitFor(t, "initial copy", func() (bool, string) { return o.treeMatches(root, "el") })
	old := o.files("el")
	a.settled(t)
	repomdPath := filepath.Join(root, "el/repodata/repomd.xml")
	before, err := os.Stat(repomdPath)
	if err != nil {
		t.Fatal(err)
	}

	pb, _ := o.upload("el", "b", "1.0")
	took := waitFor(t, "new generation on the edge", a.caughtUp(o, "el"))
	// A switched pointer file is dated at least a second later, so that
	// If-Modified-Since (whole seconds) sees the change.
	if after, err := os.Stat(repomdPath); err != nil || !after.ModTime().Truncate(time.Second).After(before.ModTime().Truncate(time.Second)) {
		t.Errorf("repomd.xml modification time went from %v to %v (%v); want a later second", before.ModTime(), after.ModTime(), err)
	}
	t.Logf("upload answered -> edge tree identical: %s", took)
	// Only the difference from the served generation was listed.
	if !strings.Contains(a.logs.String(), "difference=true") {
		t.Errorf("the new generation was not applied as a difference:\n%s", a.logs.String())
	}
	for _, p := range []string{pa, pb} {
		if _, err := os.Stat(filepath.Join(root, "el", p)); err != nil {
			t.Errorf("package %s: %v", p, err)
		}
	}
	// The previous generation's index files stay for clients mid-update.
	for _, f := range old.Files {
		if _, err := os.Stat(filepath.Join(root, "el", f.Path)); err != nil {
			t.Errorf("file %s of the previous generation is gone: %v", f.Path, err)
		}
	}
	cur := o.files("el").Generation
	if got := a.served("el"); got != cur {
		t.Errorf("served generation %d, origin's %d", got, cur)
	}
	waitFor(t, "heartbeat at the origin", func() (bool, string) {
		edges, err := o.svc.Meta().ListEdges(context.Background())
		if err != nil || len(edges) != 1 {
			return false, "no edge"
		}
		return edges[0].Repos["el"] == cur && edges[0].Version == "test", "edge at an older generation"
	})
	if code, body := a.get(t, "/healthz"); code != 200 || !strings.Contains(body, `"status": "ok"`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if _, body := a.get(t, "/metrics"); !strings.Contains(body, `packyard_agent_generation{repo="el"}`) {
		t.Errorf("/metrics lacks packyard_agent_generation:\n%s", body)
	}
	if code, body := a.get(t, "/el/repodata/repomd.xml"); code != 200 || !strings.Contains(body, "<repomd") {
		t.Errorf("built-in server: repomd.xml = %d", code)
	}
	// Nothing temporary is left behind.
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// TestAgentRefusesCorruptBlob: a blob whose bytes do not match its digest
// is never written into the tree, the pointer files stay on the previous
// generation, and the agent reports the error (log, /healthz, origin).
func TestAgentRefusesCorruptBlob(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	a := startAgent(t, testConfig(t, o))
	root := a.cfg.RootDir
	waitFor(t, "initial copy", func() (bool, string) { return o.treeMatches(root, "el") })
	a.settled(t)
	repomd := fileDigest(t, filepath.Join(root, "el/repodata/repomd.xml"))
	served := a.served("el")

	// The next package's blob is corrupted on its way to the edge, from
	// before it is uploaded (a fast edge fetches it at once).
	bad := o.build("bad", "1.0")
	sum := sha256.Sum256(bad)
	o.corrupt.Store(hex.EncodeToString(sum[:]))
	path, _ := o.put("el", "bad", "1.0", bad)
	waitFor(t, "error reported", func() (bool, string) {
		st := a.Status()
		return st.Status == "degraded" && strings.Contains(st.LastError, "digest mismatch"), st.LastError
	})
	if _, err := os.Stat(filepath.Join(root, "el", path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the corrupt package was written: %v", err)
	}
	if got := fileDigest(t, filepath.Join(root, "el/repodata/repomd.xml")); got != repomd {
		t.Error("repomd.xml was switched although a package failed verification")
	}
	if a.served("el") != served {
		t.Errorf("served generation moved to %d", a.served("el"))
	}
	if !strings.Contains(a.logs.String(), "digest mismatch") {
		t.Error("the log does not say digest mismatch")
	}
	waitFor(t, "error at the origin", func() (bool, string) {
		edges, _ := o.svc.Meta().ListEdges(context.Background())
		return len(edges) == 1 && strings.Contains(edges[0].LastError, "digest mismatch"), "no error reported"
	})
	// The bytes come back right: the edge catches up.
	o.corrupt.Store("")
	waitFor(t, "recovery", a.caughtUp(o, "el"))
	// The status turns ok once the sync that wrote the tree has ended,
	// a moment after the tree matches.
	waitFor(t, "status ok after recovery", func() (bool, string) {
		st := a.Status()
		return st.Status == "ok", fmt.Sprintf("%+v", st)
	})
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// TestAgentFullSyncRepairs: a full sync re-downloads a deleted file and a
// corrupted one (even with its size and mtime restored, on a re-hash
// pass), deletes an unmanaged file and keeps a keep_files entry.
func TestAgentFullSyncRepairs(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	pa, _ := o.upload("el", "a", "1.0")
	pb, _ := o.upload("el", "b", "1.0")
	cfg := testConfig(t, o)
	cfg.RehashEvery = 3 // pass 1 is the initial sync, 2 a fast pass, 3 a re-hash
	keep := filepath.Join(cfg.RootDir, "el", "RPM-GPG-KEY-local")
	cfg.KeepFiles = []string{keep}
	a := startAgent(t, cfg)
	root := cfg.RootDir
	waitFor(t, "initial copy", func() (bool, string) { return o.treeMatches(root, "el") })
	a.settled(t)

	if err := os.Remove(filepath.Join(root, "el", pa)); err != nil {
		t.Fatal(err)
	}
	// Same size, other bytes, modification time put back: only a re-hash
	// can tell.
	bPath := filepath.Join(root, "el", pb)
	fi, err := os.Stat(bPath)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(bPath)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(bPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bPath, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	unmanaged := filepath.Join(root, "el", "Packages", "dropped-in.rpm")
	stale := filepath.Join(root, "el", tmpPrefix+"crashed.tmp")
	for _, p := range []string{unmanaged, keep, stale} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx := context.Background()
	res, err := a.FullSync(ctx) // pass 1: size+mtime
	if err != nil {
		t.Fatal(err)
	}
	if res.Rehash || res.Repaired != 1 || res.Unmanaged != 2 {
		t.Errorf("fast pass = %+v; want no re-hash, 1 repaired (the deleted file), 2 unmanaged deleted", res)
	}
	if fileDigest(t, bPath) == o.digestOf("el", pb) {
		t.Error("the fast pass noticed a change with equal size and mtime: it hashed")
	}
	res, err = a.FullSync(ctx) // pass 2: re-hash
	if err != nil {
		t.Fatal(err)
	}
	if !res.Rehash || res.Repaired != 1 {
		t.Errorf("re-hash pass = %+v; want re-hash, 1 repaired", res)
	}
	if ok, why := o.treeMatches(root, "el"); !ok {
		t.Errorf("after the full syncs: %s", why)
	}
	for _, p := range []string{unmanaged, stale} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("unmanaged %s survived: %v", p, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("keep_files entry deleted: %v", err)
	}
}

func (o *testOrigin) digestOf(repoName, p string) string {
	for _, f := range o.files(repoName).Files {
		if f.Path == p {
			return f.Digest
		}
	}
	o.t.Fatalf("%s not in %s", p, repoName)
	return ""
}

// TestAgentResumesAndRebuilds: an agent stopped while the origin moves on
// resumes from its sequence number and downloads only the new blob; with
// its state_db deleted it rebuilds from the tree without downloading.
func TestAgentResumesAndRebuilds(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	_, da := o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	a := startAgent(t, cfg)
	waitFor(t, "initial copy", func() (bool, string) { return o.treeMatches(cfg.RootDir, "el") })
	a.settled(t)
	a.stop()

	_, db := o.upload("el", "b", "1.0")
	a = startAgent(t, cfg)
	waitFor(t, "caught up after restart", a.caughtUp(o, "el"))
	// The new package once, never the first one again.
	if na, nb := o.requested(da), o.requested(db); na != 1 || nb != 1 {
		t.Errorf("blob requests: first package %d, new package %d; want 1 and 1", na, nb)
	}
	if strings.Contains(a.logs.String(), "since=0 ") {
		t.Errorf("agent did not resume from a sequence number:\n%s", a.logs.String())
	}
	a.stop()

	for _, suf := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(cfg.StateDB + suf); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	before := o.blobs.Load()
	a = startAgent(t, cfg)
	cur := o.files("el").Generation
	waitFor(t, "state rebuilt", func() (bool, string) { return a.served("el") == cur, "not serving" })
	if n := o.blobs.Load() - before; n != 0 {
		t.Errorf("rebuilding the state downloaded %d blobs, want 0", n)
	}
	if ok, why := o.treeMatches(cfg.RootDir, "el"); !ok {
		t.Error(why)
	}
	// And it follows again.
	o.upload("el", "c", "1.0")
	waitFor(t, "following after the rebuild", a.caughtUp(o, "el"))
}

// TestAgentOriginDown: while the origin is unreachable the tree stays as
// it was; when it is back the agent catches up without fetching what it has.
func TestAgentOriginDown(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	_, da := o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	a := startAgent(t, cfg)
	root := cfg.RootDir
	waitFor(t, "initial copy", func() (bool, string) { return o.treeMatches(root, "el") })
	a.settled(t)
	served := a.served("el")
	o.down.Store(true)
	pb, db := o.upload("el", "b", "1.0")
	waitFor(t, "the failed sync reported", func() (bool, string) {
		st := a.Status()
		return st.Status == "degraded", st.Status
	})
	if a.served("el") != served {
		t.Fatalf("served generation moved while the origin was down")
	}
	if _, err := os.Stat(filepath.Join(root, "el", pb)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("package appeared while the origin was down: %v", err)
	}
	if code, _ := a.get(t, "/el/repodata/repomd.xml"); code != 200 {
		t.Errorf("repomd.xml not served while the origin is down: %d", code)
	}
	o.down.Store(false)
	waitFor(t, "caught up", a.caughtUp(o, "el"))
	if na, nb := o.requested(da), o.requested(db); na != 1 || nb != 1 {
		t.Errorf("blob requests: first package %d, new package %d; want 1 and 1", na, nb)
	}
}

// TestAgentPollsBehindBufferingProxy: when the event stream stays silent
// (a proxy buffers it), the agent polls instead and still follows.
func TestAgentPollsBehindBufferingProxy(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	o.buffer.Store(true)
	cfg := testConfig(t, o)
	cfg.FeedIdleTimeout = 1
	a := startAgent(t, cfg)
	waitFor(t, "initial copy", func() (bool, string) { return o.treeMatches(cfg.RootDir, "el") })
	waitFor(t, "switch to polling", func() (bool, string) { st := a.Status(); return st.Feed == "poll", st.Feed })
	o.upload("el", "b", "1.0")
	waitFor(t, "new generation by polling", a.caughtUp(o, "el"))
}

// TestAgentBadToken: a wrong or revoked token is refused and the agent
// says why.
func TestAgentBadToken(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	cfg := testConfig(t, o)
	cfg.Token = "pky_not-a-token"
	a := startAgent(t, cfg)
	waitFor(t, "refusal logged", func() (bool, string) {
		l := a.logs.String()
		return strings.Contains(l, "401") && strings.Contains(l, "revoked"), "no such log"
	})
	if st := a.Status(); st.Status != "empty" {
		t.Errorf("status %+v, want empty", st)
	}
	if code, _ := a.get(t, "/healthz"); code != 503 {
		t.Errorf("/healthz of an edge that serves nothing = %d, want 503", code)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "agent.toml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := LoadConfig(write(`origin = "http://origin:8080"
name = "edge-1"
token = "pky_x"
repos = ["el9", "bookworm"]
root_dir = "tree"
state_db = "/var/lib/agent/state.db"
full_sync_interval = 600
keep_files = ["`+dir+`/tree/README"]
listen = ":8081"
`), env(map[string]string{"PACKYARD_AGENT_TOKEN": "pky_env"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "pky_env" || c.RootDir != filepath.Join(dir, "tree") || c.FullSyncInterval != 600 || c.RehashEvery != 24 || len(c.Repos) != 2 {
		t.Errorf("config = %+v", c)
	}
	for _, tc := range []struct{ body, want string }{
		{`origin = "http://o"` + "\nbogus = 1\n", `unknown key "bogus"`},
		{`origin = "ftp://o"`, "origin:"},
		{`origin = "http://o"` + "\nname = \"e\"\ntoken = \"t\"\nroot_dir = \"/r\"\nstate_db = \"/r/state.db\"\n", "inside root_dir"},
		{`origin = "http://o"` + "\nname = \"e\"\ntoken = \"t\"\nroot_dir = \"/r\"\nstate_db = \"/s.db\"\nkeep_files = [\"/elsewhere\"]\n", "keep_files"},
		{`origin = "http://o"` + "\nname = \"e\"\ntoken = \"t\"\nroot_dir = \"/r\"\nstate_db = \"/s.db\"\nrepos = [\"../x\"]\n", "repos:"},
		{`origin = "http://o"` + "\nname = \"e\"\ntoken = \"t\"\nroot_dir = \"/r\"\nstate_db = \"/s.db\"\nrehash_every = 0\n", "rehash_every"},
		{`origin = "http://o"` + "\nname = \"e\"\nroot_dir = \"/r\"\nstate_db = \"/s.db\"\n", "token:"},
	} {
		_, err := LoadConfig(write(tc.body), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want one mentioning %q", tc.body, err, tc.want)
		}
	}
}

func TestValidFilePath(t *testing.T) {
	for p, want := range map[string]bool{
		"Packages/a.rpm": true, "repodata/repomd.xml": true, "dists/x/InRelease": true,
		"": false, "/etc/passwd": false, "../x": false, "a/../../x": false, "a/./b": false, "a//b": false,
		"a/" + tmpPrefix + "x": false, "a\\b": false, "a\x00b": false, "..": false,
	} {
		if got := validFilePath(p); got != want {
			t.Errorf("validFilePath(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestAgentThroughProxy: with proxy set, every request to the origin goes
// through it, the event stream included.
func TestAgentThroughProxy(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	var mu sync.Mutex
	seen := map[string]int{}
	fwd := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.Out.URL = pr.In.URL },
		FlushInterval: -1,
	}
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[r.URL.Path]++
		mu.Unlock()
		fwd.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { px.CloseClientConnections(); px.Close() })
	cfg := testConfig(t, o)
	cfg.Proxy = px.URL
	a := startAgent(t, cfg)
	waitFor(t, "copy through the proxy", a.caughtUp(o, "el"))
	o.upload("el", "b", "1.0")
	waitFor(t, "new generation through the proxy", a.caughtUp(o, "el"))
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/api/v1/events", "/api/v1/repos/el/generations/current/files"} {
		if seen[p] == 0 {
			t.Errorf("%s did not go through the proxy (saw %v)", p, seen)
		}
	}
}

// TestAgentGracePeriod: files that left the served generation stay until
// the grace period has passed; then a full sync deletes them, and only
// them.
func TestAgentGracePeriod(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	a := startAgent(t, cfg)
	waitFor(t, "initial copy", a.caughtUp(o, "el"))
	a.settled(t)
	old := o.files("el")
	o.upload("el", "b", "1.0")
	waitFor(t, "new generation", a.caughtUp(o, "el"))
	cur := map[string]bool{}
	for _, f := range o.files("el").Files {
		cur[f.Path] = true
	}
	var gone []string
	for _, f := range old.Files {
		if !cur[f.Path] {
			gone = append(gone, f.Path)
		}
	}
	if len(gone) == 0 {
		t.Fatal("the new generation replaced no file of the old one")
	}
	res, err := a.FullSync(context.Background())
	if err != nil || res.Expired != 0 {
		t.Fatalf("full sync within the grace period: %+v, %v; want nothing expired", res, err)
	}
	for _, p := range gone {
		if _, err := os.Stat(filepath.Join(cfg.RootDir, "el", p)); err != nil {
			t.Errorf("%s deleted within the grace period: %v", p, err)
		}
	}
	a.stop()

	cfg.GracePeriod = 0
	a = startAgent(t, cfg)
	res, err = a.FullSync(context.Background())
	if err != nil || res.Expired != len(gone) {
		t.Fatalf("full sync after the grace period: %+v, %v; want %d expired", res, err, len(gone))
	}
	for _, p := range gone {
		if _, err := os.Stat(filepath.Join(cfg.RootDir, "el", p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived the grace period: %v", p, err)
		}
	}
	if ok, why := o.treeMatches(cfg.RootDir, "el"); !ok {
		t.Errorf("current generation damaged: %s", why)
	}
}
