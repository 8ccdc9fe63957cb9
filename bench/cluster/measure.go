package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/server"
	"github.com/packyard/packyard/bench/internal/stats"
)

const benchRepo = "bench"

// loadCorpus returns the package files bench/corpus wrote under dir, in
// corpus order, and the first large package (dir/big/*.rpm).
func loadCorpus(dir string, n int) ([]corpus.File, corpus.File, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		return nil, corpus.File{}, fmt.Errorf("read corpus manifest: %w (generate it with go run ./bench/corpus)", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			names = append(names, l)
		}
	}
	if len(names) < n {
		return nil, corpus.File{}, fmt.Errorf("corpus %s has %d packages; need %d", dir, len(names), n)
	}
	files := make([]corpus.File, n)
	for i := range files {
		if files[i], err = hashFile(filepath.Join(dir, "rpms", names[i])); err != nil {
			return nil, corpus.File{}, err
		}
	}
	bigs, _ := filepath.Glob(filepath.Join(dir, "big", "*.rpm"))
	if len(bigs) == 0 {
		return nil, corpus.File{}, fmt.Errorf("corpus %s has no large package (bench/corpus -big 1)", dir)
	}
	big, err := hashFile(bigs[0])
	return files, big, err
}

func hashFile(p string) (corpus.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return corpus.File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return corpus.File{}, err
	}
	return corpus.File{Name: filepath.Base(p), Path: p, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// backend is one way to store an installation.
type backend struct {
	name string
	// stores returns the environment of the nodes of a new, empty
	// installation; every node of one installation gets the same.
	stores func(ctx context.Context, data string) ([]string, error)
}

// sqliteFS is the single-machine default: SQLite and files under --data.
var sqliteFS = backend{name: "SQLite + fs", stores: func(context.Context, string) ([]string, error) { return nil, nil }}

// pgMinIO is PostgreSQL and MinIO, a new database and bucket each time.
func pgMinIO(pg *postgres, mc *minioServer) backend {
	return backend{name: "PostgreSQL + MinIO", stores: func(ctx context.Context, _ string) ([]string, error) {
		dsn, err := pg.newDatabase(ctx)
		if err != nil {
			return nil, err
		}
		blobs, err := mc.newBucket(ctx)
		if err != nil {
			return nil, err
		}
		return append(mc.env(), "PACKYARD_DATABASE="+dsn, "PACKYARD_BLOBS="+blobs), nil
	}}
}

// install is one installation: the settings its nodes share, and the
// nodes started on it.
type install struct {
	dir   string
	env   []string
	token string
	nodes []*server.Server
}

// newInstall starts k nodes of a new installation on b.
func (r *run) newInstall(ctx context.Context, b backend, k int) (*install, error) {
	r.seq++
	in := &install{dir: filepath.Join(r.cfg.work, fmt.Sprintf("install-%d", r.seq))}
	env, err := b.stores(ctx, in.dir)
	if err != nil {
		return nil, err
	}
	tb := make([]byte, 24)
	_, _ = rand.Read(tb)
	in.token = "pyd_bench_" + hex.EncodeToString(tb) // one for every node of the installation
	in.env = append(env, "PACKYARD_ADMIN_TOKEN="+in.token, "PACKYARD_KEY_DIR="+filepath.Join(in.dir, "keys"))
	for range k {
		if _, err := in.node(r.cfg.bin); err != nil {
			in.stop()
			return nil, err
		}
	}
	return in, nil
}

// node starts one more node of the installation, with extra settings.
func (in *install) node(bin string, extra ...string) (*server.Server, error) {
	data := filepath.Join(in.dir, fmt.Sprintf("node-%d", len(in.nodes)+1))
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	s, err := server.Start(bin, data, data+".log", append(in.env, extra...)...)
	if err != nil {
		return nil, err
	}
	s.Token = in.token
	in.nodes = append(in.nodes, s)
	return s, nil
}

func (in *install) stop() { stopAll(in.nodes) }

func stopAll(ss []*server.Server) {
	for _, s := range ss {
		s.Stop()
	}
}

// visibleResult is upload → visible on one backend at one N.
type visibleResult struct {
	Backend string
	N       int
	Preload time.Duration
	Visible stats.Samples
}

// measureVisible preloads base into a new installation on b, then uploads
// each of extra and times it from the start of its PUT until a GET of
// repomd.xml returns the generation that holds it.
func (r *run) measureVisible(ctx context.Context, b backend, base, extra []corpus.File) (*visibleResult, error) {
	in, err := r.newInstall(ctx, b, 1)
	if err != nil {
		return nil, err
	}
	defer in.stop()
	c := server.NewClient(in.nodes[0], benchRepo, 8)
	if _, err := c.API.CreateRepo(ctx, benchRepo, "rpm", "hosted", nil); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := c.Preload(base, nil, 8, r.cfg.logf); err != nil {
		return nil, err
	}
	// The first waiting upload publishes the preload with it; it is not a
	// sample.
	if _, err := c.Upload(ctx, extra[0], nil, true); err != nil {
		return nil, err
	}
	res := &visibleResult{Backend: b.name, N: len(base), Preload: time.Since(start)}
	prev, err := c.Fetch("repodata/repomd.xml")
	if err != nil {
		return nil, err
	}
	for _, f := range extra[1:] {
		t0 := time.Now()
		if _, err := c.Upload(ctx, f, nil, true); err != nil {
			return nil, err
		}
		md, err := c.Fetch("repodata/repomd.xml")
		if err != nil {
			return nil, err
		}
		res.Visible = append(res.Visible, time.Since(t0))
		if string(md) == string(prev) {
			return nil, fmt.Errorf("%s: repomd.xml did not change after the upload of %s was answered", b.name, f.Name)
		}
		prev = md
	}
	r.cfg.logf("  %s, N = %d: p50 %s, p95 %s", b.name, len(base), stats.MS(res.Visible.P50()), stats.MS(res.Visible.P95()))
	return res, nil
}

// throughputResult is the aggregate upload rate of one setup.
type throughputResult struct {
	Setup    string
	Packages int
	Bytes    int64
	Elapsed  time.Duration
}

// measureThroughput uploads files into a new installation of k nodes on
// b with clients concurrent waiting PUTs spread over the nodes.
func (r *run) measureThroughput(ctx context.Context, b backend, k int, files []corpus.File) (*throughputResult, *install, error) {
	in, err := r.newInstall(ctx, b, k)
	if err != nil {
		return nil, nil, err
	}
	cs := make([]*server.Client, k)
	for i, s := range in.nodes {
		cs[i] = server.NewClient(s, benchRepo, r.cfg.clients)
	}
	if _, err := cs[0].API.CreateRepo(ctx, benchRepo, "rpm", "hosted", nil); err != nil {
		in.stop()
		return nil, nil, err
	}
	var next atomic.Int64
	var bytes atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, r.cfg.clients)
	start := time.Now()
	for w := range r.cfg.clients {
		c := cs[w%k]
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				if _, err := c.Upload(ctx, files[i], nil, true); err != nil {
					errc <- err
					return
				}
				bytes.Add(files[i].Size)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		in.stop()
		return nil, nil, err
	}
	setup := fmt.Sprintf("%s, %d node", b.name, k)
	if k > 1 {
		setup += "s"
	}
	res := &throughputResult{Setup: setup, Packages: len(files), Bytes: bytes.Load(), Elapsed: elapsed}
	r.cfg.logf("  %s: %d uploads in %s", setup, len(files), stats.Secs(elapsed))
	return res, in, nil
}

// readResult is the read rate of one file from one server.
type readResult struct {
	File, Server string
	Requests     int
	Bytes        int64
	Elapsed      time.Duration
}

// measureRead has r.cfg.readers clients GET u (following redirects) for
// r.cfg.readFor and checks that every answer is want bytes long.
func (r *run) measureRead(file, srv, u string, want int64) (*readResult, error) {
	tr := &http.Transport{MaxIdleConns: r.cfg.readers * 2, MaxIdleConnsPerHost: r.cfg.readers * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var reqs, bytes atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, r.cfg.readers)
	stop := time.Now().Add(r.cfg.readFor)
	start := time.Now()
	for range r.cfg.readers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				resp, err := hc.Get(u)
				if err != nil {
					errc <- err
					return
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || n != want {
					errc <- fmt.Errorf("GET %s: %s, %d bytes (want %d), %v", u, resp.Status, n, want, err)
					return
				}
				reqs.Add(1)
				bytes.Add(n)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	res := &readResult{File: file, Server: srv, Requests: int(reqs.Load()), Bytes: bytes.Load(), Elapsed: elapsed}
	r.cfg.logf("  %s from %s: %.0f req/s", file, srv, float64(res.Requests)/elapsed.Seconds())
	return res, nil
}
