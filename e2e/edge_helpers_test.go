package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blobbatch"
)

// edgeProxy stands between an edge agent and its origin, as the network
// does: it counts the blobs the agent fetches (by digest), can corrupt one
// blob on the way, and follows the origin to a new address when it is
// restarted.
type edgeProxy struct {
	t   *testing.T
	url string

	mu      sync.Mutex
	target  *url.URL
	asked   map[string]int
	corrupt string
}

func newEdgeProxy(t *testing.T, origin string) *edgeProxy {
	t.Helper()
	p := &edgeProxy{t: t, asked: map[string]int{}}
	p.setTarget(origin)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			pr.SetURL(target)
		},
		FlushInterval: -1, // the change feed streams
		ModifyResponse: func(resp *http.Response) error {
			p.mu.Lock()
			corrupt := p.corrupt
			p.mu.Unlock()
			if resp.Request.URL.Path == "/api/v1/blobs" && corrupt != "" && resp.StatusCode == http.StatusOK {
				// A batch: corrupt the blob inside the stream.
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				_ = blobbatch.Walk(b, func(d string, data []byte) {
					if d == corrupt && len(data) > 0 {
						data[len(data)/2] ^= 0x55
					}
				})
				resp.Body = io.NopCloser(bytes.NewReader(b))
				return nil
			}
			d, ok := strings.CutPrefix(resp.Request.URL.Path, "/api/v1/blobs/")
			bad := ok && d == corrupt && resp.StatusCode == http.StatusOK
			if bad {
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				b[len(b)/2] ^= 0x55
				resp.Body = io.NopCloser(bytes.NewReader(b))
			}
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0), // a cut-off origin is the point
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := strings.CutPrefix(r.URL.Path, "/api/v1/blobs/"); ok {
			p.mu.Lock()
			p.asked[d]++
			p.mu.Unlock()
		}
		if r.URL.Path == "/api/v1/blobs" && r.Method == http.MethodPost {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			p.mu.Lock()
			for _, d := range strings.Fields(string(body)) {
				p.asked[d]++
			}
			p.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	p.url = srv.URL
	return p
}

func (p *edgeProxy) setTarget(origin string) {
	u, err := url.Parse(origin)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.target = u
	p.mu.Unlock()
}

func (p *edgeProxy) setCorrupt(digest string) {
	p.mu.Lock()
	p.corrupt = digest
	p.mu.Unlock()
}

// requested returns how often the agent fetched a blob.
func (p *edgeProxy) requested(digest string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[digest]
}

// blobRequests returns how many blob requests the agent made.
func (p *edgeProxy) blobRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.asked {
		n += c
	}
	return n
}

// agentProc is a running `packyard agent`.
type agentProc struct {
	t       *testing.T
	cfgPath string
	root    string
	state   string
	url     string // its own server: /healthz, /metrics, POST /api/v1/sync
	cmd     *exec.Cmd
	logs    *logSink
	exited  chan struct{}
	stopped bool
}

// edgeSyncToken is the agents' sync_token: POST /api/v1/sync requires it.
const edgeSyncToken = "e2e-sync-token-0123456789"

// edgeConfig writes an agent configuration (extra is appended as TOML)
// and returns its path; the tree is <dir>/root, the state <dir>/state.db.
func edgeConfig(t *testing.T, origin, name, token string, repos []string, extra string) (cfgPath, root, state string) {
	t.Helper()
	dir := t.TempDir()
	root, state = filepath.Join(dir, "root"), filepath.Join(dir, "state.db")
	q := make([]string, len(repos))
	for i, r := range repos {
		q[i] = fmt.Sprintf("%q", r)
	}
	cfg := fmt.Sprintf(`origin = %q
name = %q
token = %q
repos = [%s]
root_dir = %q
state_db = %q
full_sync_interval = 3600
heartbeat_interval = 1
listen = "127.0.0.1:0"
sync_token = %q
%s
`, origin, name, token, strings.Join(q, ", "), root, state, edgeSyncToken, extra)
	cfgPath = filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, root, state
}

// startAgent runs `packyard agent --config cfgPath` and waits for its
// start-up line. Cleanup stops it (SIGTERM, exit 0 expected) and shows its
// log if the test failed.
func startAgent(t *testing.T, cfgPath, root, state string) *agentProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "agent.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{t: t, cfgPath: cfgPath, root: root, state: state, logs: newLogSink(f), exited: make(chan struct{})}
	a.cmd = exec.Command(packyardBin, "agent", "--config", cfgPath)
	a.cmd.Env = cleanEnv("PACKYARD_LOG_FORMAT=json")
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start packyard agent: %v", err)
	}
	go func() {
		_ = a.cmd.Wait()
		close(a.exited)
		f.Close()
	}()
	t.Cleanup(func() {
		if !a.stopped {
			a.stop()
		}
		if t.Failed() {
			t.Logf("agent log (%s):\n%s", logPath, a.logs.tail(200))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	line, err := a.logs.waitFor(ctx, a.exited, "packyard agent started")
	if err != nil {
		t.Fatalf("agent did not start: %v", err)
	}
	addr, _ := line["listen"].(string)
	if addr == "" {
		t.Fatalf("agent start-up line has no listen address: %v", line)
	}
	a.url = "http://" + addr
	return a
}

// stop sends SIGTERM and expects exit 0.
func (a *agentProc) stop() {
	a.t.Helper()
	a.stopped = true
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
		a.t.Error("agent did not exit within 20 s of SIGTERM")
		return
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		a.t.Errorf("agent exited with %v after SIGTERM, want 0", a.cmd.ProcessState)
	}
}

// kill9 kills the agent with SIGKILL.
func (a *agentProc) kill9() {
	a.t.Helper()
	a.stopped = true
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		a.t.Fatal(err)
	}
	<-a.exited
}

// agentStatus is the agent's /healthz answer.
type agentStatus struct {
	Status    string           `json:"status"`
	Feed      string           `json:"feed"`
	Repos     map[string]int64 `json:"repos"`
	LastError string           `json:"last_error"`
}

func (a *agentProc) status() agentStatus {
	a.t.Helper()
	var st agentStatus
	resp, err := http.Get(a.url + "/healthz")
	if err != nil {
		a.t.Fatalf("agent /healthz: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		a.t.Fatalf("agent /healthz: %v", err)
	}
	return st
}

// waitSettled waits until the agent has recorded a feed position (its
// first full sync is complete), as its /metrics shows.
func (a *agentProc) waitSettled() {
	a.t.Helper()
	re := regexp.MustCompile(`(?m)^packyard_agent_last_seq ([0-9.e+]+)$`)
	waitEdge(a.t, "agent feed position", func() (bool, string) {
		_, b := httpGet(a.t, a.url+"/metrics")
		m := re.FindSubmatch(b)
		return m != nil && string(m[1]) != "0", "packyard_agent_last_seq is 0"
	})
}

// fullSync runs a full sync through the agent's API and returns its report.
func (a *agentProc) fullSync() map[string]any {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+"/api/v1/sync", nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+edgeSyncToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		a.t.Fatalf("POST /api/v1/sync: %d %v %v", resp.StatusCode, out, err)
	}
	return out
}

// originFile is one entry of the origin's generation file list.
type originFile struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// originFiles returns the origin's current generation of a repository.
func (s *server) originFiles(t *testing.T, repo string) (int64, []originFile) {
	t.Helper()
	var gl struct {
		Generation int64        `json:"generation"`
		Files      []originFile `json:"files"`
	}
	s.apiJSON(t, http.MethodGet, "/api/v1/repos/"+repo+"/generations/current/files", nil, http.StatusOK, &gl)
	return gl.Generation, gl.Files
}

// edgeMatches reports whether the agent's tree holds the origin's current
// generation of repo byte for byte and the agent says it serves it.
func (a *agentProc) edgeMatches(s *server, repo string) (bool, string) {
	gen, files := s.originFiles(a.t, repo)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(a.root, repo, filepath.FromSlash(f.Path)))
		if err != nil {
			return false, err.Error()
		}
		if sha256hex(b) != f.Digest {
			return false, f.Path + " differs from the origin"
		}
	}
	if st := a.status(); st.Repos[repo] != gen {
		return false, fmt.Sprintf("agent serves generation %d of %s, origin has %d", st.Repos[repo], repo, gen)
	}
	return true, ""
}

// waitEdge polls cond every 10 ms for up to 30 s and returns how long it
// took.
func waitEdge(t *testing.T, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	why := ""
	for time.Since(start) < 30*time.Second {
		ok, w := cond()
		if ok {
			return time.Since(start)
		}
		why = w
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30 s: %s", what, why)
	return 0
}

// edgeToken creates a token of scope edge named name at the origin.
func (s *server) edgeToken(t *testing.T, name string) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	s.apiJSON(t, http.MethodPost, "/api/v1/tokens", map[string]any{"name": name, "scope": "edge"}, http.StatusCreated, &tok)
	return tok.Token
}

// httpGet fetches a URL and returns the status and body.
func httpGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, b
}

// edgePrimaryHas reports whether the repository at base (a URL ending in
// the repository's directory) lists a package in its primary.xml, and the
// hrefs of every file its repomd.xml names.
func edgePrimaryHas(t *testing.T, base, name string) (bool, []string) {
	t.Helper()
	code, b := httpGet(t, base+"/repodata/repomd.xml")
	if code != http.StatusOK {
		return false, nil
	}
	var md repomd
	if err := xml.Unmarshal(b, &md); err != nil {
		return false, nil
	}
	var hrefs []string
	var primary string
	for _, d := range md.Data {
		hrefs = append(hrefs, d.Location.Href)
		if d.Type == "primary" {
			primary = d.Location.Href
		}
	}
	code, b = httpGet(t, base+"/"+primary)
	if code != http.StatusOK {
		return false, hrefs
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return false, hrefs
	}
	open, err := io.ReadAll(zr)
	if err != nil {
		return false, hrefs
	}
	for _, p := range parsePrimary(t, open) {
		if p.Name == name {
			if c, _ := httpGet(t, base+"/"+p.Location.Href); c == http.StatusOK {
				return true, hrefs
			}
		}
	}
	return false, hrefs
}

// noTempFiles fails the test if the agent left a temporary file.
func noTempFiles(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".packyard-agent-") {
			t.Errorf("temporary file left in the tree: %s", p)
		}
		return nil
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
