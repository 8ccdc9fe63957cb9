package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/stats"
	"github.com/packyard/packyard/internal/client"
)

const benchRepo = "bench"

// pyClient uploads to and reads from one server.
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

// fetch reads a file of the repository as an APT client would.
func (c *pyClient) fetch(rel string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+"/"+benchRepo+"/"+rel, nil)
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
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /%s/%s: HTTP %d: %.200s", benchRepo, rel, resp.StatusCode, b)
	}
	return b, nil
}

func (c *pyClient) upload(ctx context.Context, f debFile, wait bool) (*client.UploadResult, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r, err := c.api.Upload(ctx, benchRepo, f.Name, fh, f.Size,
		map[string]string{"distribution": dist, "component": component}, wait)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", f.Name, err)
	}
	if !r.Created {
		return nil, fmt.Errorf("upload %s: the server says the package was already there", f.Name)
	}
	if r.SHA256 != f.SHA256 {
		return nil, fmt.Errorf("upload %s: the server recorded sha256 %s, the file has %s", f.Name, r.SHA256, f.SHA256)
	}
	return r, nil
}

// runPackyard starts a fresh server with a deb repository signed by the
// server's default key, preloads base with concurrent ?wait=false PUTs,
// waits until the published indexes list all of them, then times each
// upload of extra (a PUT that answers once the package is in the
// published, signed generation).
func runPackyard(cfg *config, work string, base, extra []debFile) (*toolResult, error) {
	ctx := context.Background()
	res := &toolResult{Tool: toolPackyard}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	s, err := startServer(cfg.bin, filepath.Join(work, "data"), filepath.Join(work, "packyard.log"))
	if err != nil {
		return nil, err
	}
	defer s.stop()
	c := newPyClient(s, cfg.workers)
	r, err := c.api.CreateRepo(ctx, benchRepo, "deb", "hosted", nil)
	if err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	if len(r.Signing) == 0 {
		return nil, fmt.Errorf("repository %s is not signed: the benchmark measures signed publishing", benchRepo)
	}
	cfg.logf("  packyard started (pid %d, %s), repository signed by %s", s.pid(), s.base, r.Signing[0].Fingerprint)
	keyring := filepath.Join(work, "key.gpg")
	if b, err := c.fetch("key.gpg"); err != nil {
		return nil, err
	} else if err := os.WriteFile(keyring, b, 0o644); err != nil {
		return nil, err
	}

	fm := proc.StartForeign(s.pid())
	cpu0, _ := proc.CPUTime(s.pid())
	start := time.Now()
	if err := preloadPackyard(cfg, c, base); err != nil {
		return nil, err
	}
	putsDone := time.Since(start)
	// The PUTs answered once durable; the preload ends when the published
	// indexes list every package.
	for attempt := 0; ; attempt++ {
		err := verifyPublished(c.fetch, keyring, filepath.Join(work, "check"), base)
		if err == nil {
			break
		}
		if time.Since(start) > cfg.preloadTimeout {
			return nil, fmt.Errorf("preload: after %s the published indexes are still incomplete: %w", cfg.preloadTimeout, err)
		}
		if attempt%100 == 0 {
			cfg.progress("  packyard preload: not published yet (%v); waiting", err)
		}
		if err := s.alive(); err != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.Preload = time.Since(start)
	cpu1, _ := proc.CPUTime(s.pid())
	res.PreloadNote = fmt.Sprintf("%d concurrent PUTs with `?wait=false` answered after %s; server CPU %s",
		cfg.workers, stats.Secs(putsDone), stats.Secs(cpu1-cpu0))
	cfg.logf("  packyard preload of %d: %s (%s)", len(base), stats.Secs(res.Preload), res.PreloadNote)

	state, err := indexState(c.fetch)
	if err != nil {
		return nil, err
	}
	cpu0, _ = proc.CPUTime(s.pid())
	for i, f := range extra {
		t0 := time.Now()
		u, err := c.upload(ctx, f, true)
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		// Untimed: the answer means the package is published, so the
		// InRelease served now must name a new index for its architecture.
		next, err := indexState(c.fetch)
		if err != nil {
			return nil, err
		}
		if !changedFor(state, next, f.Arch) {
			return nil, fmt.Errorf("upload %d (%s, generation %d): answered, but InRelease names the same Packages for %s as before", i+1, f.Name, u.Generation, f.Arch)
		}
		state = next
		res.Samples = append(res.Samples, d)
		cfg.progress("  packyard %d/%d: %s (generation %d)", i+1, len(extra), stats.MS(d), u.Generation)
	}
	cpu1, _ = proc.CPUTime(s.pid())
	res.CPUPerSample = (cpu1 - cpu0) / time.Duration(len(extra))
	res.Foreign = fm.Stop()
	if err := verifyPublished(c.fetch, keyring, filepath.Join(work, "check"), append(append([]debFile(nil), base...), extra...)); err != nil {
		return nil, fmt.Errorf("after the samples: %w", err)
	}
	if m, err := proc.ReadMem(s.pid()); err == nil {
		res.RSS = m.RSS
	}
	cfg.logf("  packyard upload→visible p50 %s p95 %s mean %s (%d samples; server CPU %s per upload; VmRSS %s); InRelease verified with gpgv",
		stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples),
		stats.MS(res.CPUPerSample), stats.MiB(res.RSS))
	return res, s.alive()
}

// preloadPackyard uploads pkgs with cfg.workers concurrent ?wait=false
// PUTs (what `packyard push --no-wait -j N` does).
func preloadPackyard(cfg *config, c *pyClient, pkgs []debFile) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, cfg.workers)
	start := time.Now()
	for w := 0; w < cfg.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(pkgs) || ctx.Err() != nil {
					return
				}
				if _, err := c.upload(ctx, pkgs[i], false); err != nil {
					errc <- err
					cancel()
					return
				}
				if n := done.Add(1); n%5000 == 0 {
					cfg.progress("  packyard preload: %d/%d after %s", n, len(pkgs), stats.Secs(time.Since(start)))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}
