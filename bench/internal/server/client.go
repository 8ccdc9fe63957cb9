package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/stats"
	"github.com/packyard/packyard/internal/client"
)

// Client uploads to and reads from one repository of a server.
type Client struct {
	API  *client.Client
	Repo string
	http *http.Client
	base string
}

// NewClient returns a client of repository repo of s that keeps up to
// conns connections open.
func NewClient(s *Server, repo string, conns int) *Client {
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true}
	hc := &http.Client{Transport: tr}
	return &Client{API: client.New(s.Base, s.Token, hc), Repo: repo, http: hc, base: s.Base}
}

// Fetch reads a file of the published repository by its path below the
// repository's root, as a package manager would.
func (c *Client) Fetch(rel string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+"/"+c.Repo+"/"+rel, nil)
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
		return nil, fmt.Errorf("GET /%s/%s: HTTP %d: %.200s", c.Repo, rel, resp.StatusCode, b)
	}
	return b, nil
}

// Upload PUTs f with the query parameters params. With wait it answers
// once the package is in the published generation, without once it is
// stored. It fails unless the server created the package and recorded
// the file's SHA256.
func (c *Client) Upload(ctx context.Context, f corpus.File, params map[string]string, wait bool) (*client.UploadResult, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r, err := c.API.Upload(ctx, c.Repo, f.Name, fh, f.Size, params, wait)
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

// Preload uploads files with workers concurrent ?wait=false PUTs (what
// `packyard push --no-wait -j N` does); progress is told every 5,000.
func (c *Client) Preload(files []corpus.File, params map[string]string, workers int, progress func(format string, args ...any)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) || ctx.Err() != nil {
					return
				}
				if _, err := c.Upload(ctx, files[i], params, false); err != nil {
					errc <- err
					cancel()
					return
				}
				if n := done.Add(1); n%5000 == 0 {
					progress("  packyard preload: %d/%d after %s", n, len(files), stats.Secs(time.Since(start)))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}
