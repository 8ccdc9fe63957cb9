package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/internal/client"
)

// pyResult holds packyard's figures for one N.
type pyResult struct {
	Bulk          time.Duration // first PUT → repomd.xml names a primary with all N
	BulkPUTs      time.Duration // first PUT → last PUT answered
	BulkServerCPU time.Duration // server user+system CPU during the bulk import
	BulkGen       int64         // generation number after the bulk import
	Visible       samples       // PUT start → fresh repomd.xml GET done
	PUTOnly       samples       // PUT start → PUT answered
	MemAfterBulk  memStatus
	MemAfterAll   memStatus
	Big           *bigResult
	BulkWait      *bulkResult // bulk import with waiting PUTs, if measured
	Foreign       *foreignMeter
}

type bigResult struct {
	File          string
	Size          int64
	Upload        time.Duration
	Baseline, Top int64 // VmRSS kB
	HWMBefore     int64
	HWMAfter      int64
	Samples       int
}

const benchRepo = "bench"

type pkgFile struct {
	name string
	path string
	sha  string
	size int64
}

func hashFiles(dir string, names []string) ([]pkgFile, error) {
	out := make([]pkgFile, len(names))
	for i, n := range names {
		p := filepath.Join(dir, n)
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		sz, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		out[i] = pkgFile{name: n, path: p, sha: hex.EncodeToString(h.Sum(nil)), size: sz}
	}
	return out, nil
}

type pyClient struct {
	api  *client.Client
	http *http.Client
	base string
}

func newPyClient(s *server, conns int) *pyClient {
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true}
	hc := &http.Client{Transport: tr}
	return &pyClient{api: client.New(s.base, s.token, hc), http: hc, base: s.base}
}

func (c *pyClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: HTTP %d: %.200s", path, resp.StatusCode, b)
	}
	return b, nil
}

// primary downloads and decodes the primary named by a repomd.xml.
func (c *pyClient) primary(ctx context.Context, repo string, repomd []byte) ([]byte, string, error) {
	href, err := primaryHref(repomd)
	if err != nil {
		return nil, "", err
	}
	raw, err := c.get(ctx, "/"+repo+"/"+href)
	if err != nil {
		return nil, href, err
	}
	p, err := decode(href, raw)
	if err != nil {
		return nil, href, fmt.Errorf("decode %s: %w", href, err)
	}
	return p, href, nil
}

func (c *pyClient) upload(ctx context.Context, repo string, f pkgFile, wait bool) (*client.UploadResult, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r, err := c.api.Upload(ctx, repo, f.name, fh, f.size, nil, wait)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", f.name, err)
	}
	if !r.Created {
		return nil, fmt.Errorf("upload %s: server says the package was already there", f.name)
	}
	if r.SHA256 != f.sha {
		return nil, fmt.Errorf("upload %s: server recorded sha256 %s, file has %s", f.name, r.SHA256, f.sha)
	}
	return r, nil
}

// runPackyard starts a fresh server, imports base concurrently, then uploads
// each of extra alone and times until it is visible. With big set it also
// uploads that file into a second repository while sampling the server's
// RSS.
func runPackyard(cfg *config, work string, base, extra []string, big string) (*pyResult, error) {
	ctx := context.Background()
	res := &pyResult{}
	basePkgs, err := hashFiles(cfg.rpmDir, base)
	if err != nil {
		return nil, err
	}
	extraPkgs, err := hashFiles(cfg.rpmDir, extra)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	if len(basePkgs) <= cfg.bulkWaitUpTo {
		if res.BulkWait, err = bulkWaitRun(cfg, work, basePkgs); err != nil {
			return nil, fmt.Errorf("bulk import with waiting PUTs: %w", err)
		}
	}
	s, err := startServer(cfg.bin, filepath.Join(work, "data"), filepath.Join(work, "packyard.log"))
	if err != nil {
		return nil, err
	}
	defer s.stop()
	c := newPyClient(s, cfg.workers)
	if _, err := c.api.CreateRepo(ctx, benchRepo, "rpm", "hosted", nil); err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	mem0, _ := readMem(s.pid())
	cfg.logf("  packyard started (pid %d, %s), VmRSS %s", s.pid(), s.base, mib(mem0.RSS))

	fm := startForeign(s.pid())
	b, err := bulkImport(cfg, s, c, basePkgs, cfg.bulkWait)
	if err != nil {
		return nil, err
	}
	res.Bulk, res.BulkPUTs, res.BulkServerCPU, res.BulkGen = b.total, b.puts, b.serverCPU, b.gen
	res.MemAfterBulk, _ = readMem(s.pid())
	cfg.logf("  packyard bulk import of %d (wait=%v): %s (PUTs done after %s, server CPU %s, last upload generation %d), VmRSS %s VmHWM %s",
		len(basePkgs), cfg.bulkWait, secs(res.Bulk), secs(res.BulkPUTs), secs(res.BulkServerCPU), res.BulkGen, mib(res.MemAfterBulk.RSS), mib(res.MemAfterBulk.HWM))

	// Single uploads, one after another.
	for i, f := range extraPkgs {
		t0 := time.Now()
		r, err := c.upload(ctx, benchRepo, f, true)
		if err != nil {
			return nil, err
		}
		tPut := time.Since(t0)
		repomd, err := c.get(ctx, "/"+benchRepo+"/repodata/repomd.xml")
		if err != nil {
			return nil, err
		}
		d := time.Since(t0)
		// Untimed: the primary that repomd.xml names holds the package.
		p, href, err := c.primary(ctx, benchRepo, repomd)
		if err != nil {
			return nil, err
		}
		if !primaryHas(p, f.sha) {
			return nil, fmt.Errorf("upload %d (%s, generation %d): PUT returned but the repomd.xml fetched right after names %s, which does not list the package",
				i+1, f.name, r.Generation, href)
		}
		if _, n := primaryPkgids(p); n != len(basePkgs)+i+1 {
			return nil, fmt.Errorf("upload %d (%s): primary %s lists %d packages, want %d", i+1, f.name, href, n, len(basePkgs)+i+1)
		}
		res.Visible = append(res.Visible, d)
		res.PUTOnly = append(res.PUTOnly, tPut)
		cfg.progress("  upload→visible %d/%d: %s (PUT %s, generation %d)", i+1, len(extraPkgs), ms(d), ms(tPut), r.Generation)
	}
	res.MemAfterAll, _ = readMem(s.pid())
	cfg.logf("  packyard upload→visible p50 %s p95 %s max %s (%d samples; PUT alone p50 %s); VmRSS %s VmHWM %s",
		ms(res.Visible.p50()), ms(res.Visible.p95()), ms(res.Visible.max()), len(res.Visible), ms(res.PUTOnly.p50()),
		mib(res.MemAfterAll.RSS), mib(res.MemAfterAll.HWM))

	if big != "" {
		b, err := uploadBig(cfg, s, c, big)
		if err != nil {
			return nil, err
		}
		res.Big = b
	}
	res.Foreign = fm.stop()
	return res, s.alive()
}

type bulkResult struct {
	total, puts, serverCPU time.Duration
	gen                    int64
}

// bulkImport uploads pkgs with cfg.workers concurrent PUTs and returns
// when repomd.xml names a primary that lists all of them.
func bulkImport(cfg *config, s *server, c *pyClient, pkgs []pkgFile, wait bool) (*bulkResult, error) {
	ctx := context.Background()
	res := &bulkResult{}
	u0, s0, _ := cpuTime(s.pid())
	var next atomic.Int64
	var done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, cfg.workers)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lastGen atomic.Int64
	start := time.Now()
	for w := 0; w < cfg.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(pkgs) || wctx.Err() != nil {
					return
				}
				r, err := c.upload(wctx, benchRepo, pkgs[i], wait)
				if err != nil {
					errc <- err
					cancel()
					return
				}
				for {
					g := lastGen.Load()
					if r.Generation <= g || lastGen.CompareAndSwap(g, r.Generation) {
						break
					}
				}
				if n := done.Add(1); n%1000 == 0 {
					cfg.progress("  bulk import: %d/%d after %s", n, len(pkgs), secs(time.Since(start)))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	res.puts = time.Since(start)
	for attempt := 0; ; attempt++ {
		repomd, err := c.get(ctx, "/"+benchRepo+"/repodata/repomd.xml")
		if err != nil {
			return nil, err
		}
		res.total = time.Since(start)
		p, href, err := c.primary(ctx, benchRepo, repomd)
		if err != nil {
			return nil, err
		}
		ids, n := primaryPkgids(p)
		missing := 0
		for _, f := range pkgs {
			if !ids[f.sha] {
				missing++
			}
		}
		if missing == 0 && n == len(pkgs) {
			break
		}
		if err := s.alive(); err != nil {
			return nil, err
		}
		if attempt == 0 || attempt%100 == 0 {
			cfg.progress("  bulk import: %s lists %d packages, %d of %d missing; waiting", href, n, missing, len(pkgs))
		}
		if time.Since(start) > cfg.bulkTimeout {
			return nil, fmt.Errorf("bulk import: after %s the primary still misses %d of %d packages", cfg.bulkTimeout, missing, len(pkgs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	u1, s1, _ := cpuTime(s.pid())
	res.serverCPU = (u1 - u0) + (s1 - s0)
	res.gen = lastGen.Load()
	return res, nil
}

// bulkWaitRun measures a bulk import whose PUTs each wait until their
// package is published, on a fresh server of its own.
func bulkWaitRun(cfg *config, work string, pkgs []pkgFile) (*bulkResult, error) {
	dir := filepath.Join(work, "wait")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s, err := startServer(cfg.bin, filepath.Join(dir, "data"), filepath.Join(work, "packyard-wait.log"))
	if err != nil {
		return nil, err
	}
	defer s.stop()
	c := newPyClient(s, cfg.workers)
	if _, err := c.api.CreateRepo(context.Background(), benchRepo, "rpm", "hosted", nil); err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	b, err := bulkImport(cfg, s, c, pkgs, true)
	if err != nil {
		return nil, err
	}
	cfg.logf("  packyard bulk import of %d with waiting PUTs: %s (server CPU %s, last upload generation %d)", len(pkgs), secs(b.total), secs(b.serverCPU), b.gen)
	return b, s.alive()
}

// uploadBig uploads one large package into a fresh repository while
// sampling the server's VmRSS every 50 ms.
func uploadBig(cfg *config, s *server, c *pyClient, path string) (*bigResult, error) {
	ctx := context.Background()
	const repo = "big"
	if _, err := c.api.CreateRepo(ctx, repo, "rpm", "hosted", nil); err != nil {
		return nil, fmt.Errorf("create repository %s: %w", repo, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	// Warm the client's page cache so the upload is not limited by reading
	// the file, then let the server settle.
	if f, err := os.Open(path); err == nil {
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}
	time.Sleep(2 * time.Second)
	before, err := readMem(s.pid())
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	peakc := sampleRSS(sctx, s.pid(), 50*time.Millisecond)
	t0 := time.Now()
	fh, err := os.Open(path)
	if err != nil {
		stop()
		return nil, err
	}
	r, err := c.api.Upload(ctx, repo, filepath.Base(path), fh, fi.Size(), nil, true)
	fh.Close()
	d := time.Since(t0)
	stop()
	peak := <-peakc
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	if !r.Created || r.Size != fi.Size() {
		return nil, fmt.Errorf("upload %s: unexpected answer created=%v size=%d", path, r.Created, r.Size)
	}
	after, _ := readMem(s.pid())
	repomd, err := c.get(ctx, "/"+repo+"/repodata/repomd.xml")
	if err != nil {
		return nil, err
	}
	if p, href, err := c.primary(ctx, repo, repomd); err != nil {
		return nil, err
	} else if !primaryHas(p, r.SHA256) {
		return nil, fmt.Errorf("upload %s: answered but %s does not list it", path, href)
	}
	b := &bigResult{File: filepath.Base(path), Size: fi.Size(), Upload: d, Baseline: before.RSS, Top: peak,
		HWMBefore: before.HWM, HWMAfter: after.HWM, Samples: int(d / (50 * time.Millisecond))}
	cfg.logf("  1 big upload (%s, %.0f MiB): %s (%.0f MiB/s); VmRSS baseline %s, peak %s (+%s); VmHWM %s → %s",
		b.File, float64(b.Size)/(1<<20), secs(d), float64(b.Size)/(1<<20)/d.Seconds(), mib(b.Baseline), mib(b.Top), mib(b.Top-b.Baseline), mib(b.HWMBefore), mib(b.HWMAfter))
	return b, nil
}
