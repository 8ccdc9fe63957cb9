package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/stats"
)

// newClient is an HTTP client that keeps up to conns connections open
// and leaves bodies as they are.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true}}
}

// get GETs u and compares every byte of the answer with want, reading
// through buf. Comparing with the file's bytes checks as much as a
// SHA-256 of each answer would, at a fraction of the client's CPU.
func get(hc *http.Client, u string, want, buf []byte) error {
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(b))
	}
	off := 0
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if off+n > len(want) || !bytes.Equal(buf[:n], want[off:off+n]) {
				return fmt.Errorf("GET %s: the bytes at offset %d differ from the upstream's file", u, off)
			}
			off += n
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("GET %s: after %d bytes: %w", u, off, err)
		}
	}
	if off != len(want) {
		return fmt.Errorf("GET %s: %d bytes, the file has %d", u, off, len(want))
	}
	return nil
}

// timedGet is get on a new connection, timed from the request to the last
// byte.
func timedGet(u string, want []byte) (time.Duration, error) {
	hc := newClient(1)
	defer hc.Transport.(*http.Transport).CloseIdleConnections()
	t0 := time.Now()
	err := get(hc, u, want, make([]byte, 256<<10))
	return time.Since(t0), err
}

// coldResult is the first fetches from empty caches.
type coldResult struct {
	meta, pkg stats.Samples
	// upstream is the requests the upstream saw per sample, all paths.
	upstream []int
}

// measureCold starts cfg.coldSamples instances of e with empty caches in
// front of the fast upstream and times the first GET of InRelease, then
// of the package (after InRelease, as apt does). The last instance is
// returned, warm, for measureWarm.
func (r *run) measureCold(ctx context.Context, e engine) (*coldResult, *instance, error) {
	res := &coldResult{}
	var inst *instance
	for i := range r.cfg.coldSamples {
		if inst != nil {
			inst.stop()
		}
		var err error
		if inst, err = r.startInstance(ctx, e, fmt.Sprintf("cold-%d", i+1), r.up.fast); err != nil {
			return nil, nil, err
		}
		mark := r.up.mark()
		dm, err := timedGet(inst.base+metaPath, r.files.meta)
		if err != nil {
			inst.stop()
			return nil, nil, err
		}
		dp, err := timedGet(inst.base+pkgPath, r.files.pkg)
		if err != nil {
			inst.stop()
			return nil, nil, err
		}
		_, all := r.up.count(mark, "")
		res.meta = append(res.meta, dm)
		res.pkg = append(res.pkg, dp)
		res.upstream = append(res.upstream, all)
	}
	r.cfg.logf("  %s cold: InRelease %s, package %s (p50 of %d)", e.name, stats.MS(res.meta.P50()), stats.MS(res.pkg.P50()), len(res.meta))
	return res, inst, nil
}

// startInstance starts an instance of e under a new scratch directory.
func (r *run) startInstance(ctx context.Context, e engine, what, up string) (*instance, error) {
	r.seq++
	dir := filepath.Join(r.cfg.work, fmt.Sprintf("%02d-%s-%s", r.seq, slug(e.name), what))
	inst, err := e.start(ctx, dir, up)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", e.name, err)
	}
	return inst, nil
}

// warmResult is one file read from a warm cache by concurrent clients.
type warmResult struct {
	clients  int
	requests int
	bytes    int64
	elapsed  time.Duration
	latency  stats.Samples
	// errors is the failed requests, firstErr the first failure.
	errors   int
	firstErr error
	// upstream is the requests the upstream saw during the run.
	upstream int
	foreign  *proc.Foreign
	// proxyCPU is the CPU time the proxy's own processes used.
	proxyCPU time.Duration
	// rounds are the figures of every run, in order, when this is the
	// median one (medianRun).
	rounds []float64
}

func (w *warmResult) reqPerSec() float64 { return float64(w.requests) / w.elapsed.Seconds() }
func (w *warmResult) mibPerSec() float64 { return float64(w.bytes) / (1 << 20) / w.elapsed.Seconds() }

// cpuPerRequest is the proxy's CPU time per successful request.
func (w *warmResult) cpuPerRequest() time.Duration {
	return w.proxyCPU / time.Duration(max(1, w.requests))
}

// cpuOf is the CPU time processes pids used so far.
func cpuOf(pids []int) time.Duration {
	var t time.Duration
	for _, pid := range pids {
		if c, err := proc.CPUTime(pid); err == nil {
			t += c
		}
	}
	return t
}

// measureWarm has clients keep-alive clients GET rel from inst for d,
// each answer compared with want. Each client fetches once before the
// clock starts, so that its connection is open. A failed request (an
// error status, a cut or wrong body) is counted, not retried, and the
// client goes on; only successful requests count in the rates.
func (r *run) measureWarm(inst *instance, rel string, want []byte, clients int, d time.Duration) (*warmResult, error) {
	hc := newClient(clients)
	defer hc.Transport.(*http.Transport).CloseIdleConnections()
	u := inst.base + rel
	var (
		wg       sync.WaitGroup
		ready    sync.WaitGroup
		start    = make(chan struct{})
		stop     time.Time
		lats     = make([]stats.Samples, clients)
		errs     = make([]int, clients)
		firstErr = make([]error, clients)
	)
	ready.Add(clients)
	for c := range clients {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			firstErr[c] = get(hc, u, want, buf)
			ready.Done()
			if firstErr[c] != nil {
				return
			}
			<-start
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := get(hc, u, want, buf); err != nil {
					if errs[c]++; errs[c] == 1 {
						firstErr[c] = err
					}
					continue
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		})
	}
	ready.Wait()
	mark := r.up.mark()
	fm := proc.StartForeign(append(inst.pids(), r.up.PIDs()...)...)
	cpu0 := cpuOf(inst.pids())
	stop = time.Now().Add(d)
	t0 := time.Now()
	close(start)
	wg.Wait()
	res := &warmResult{clients: clients, elapsed: time.Since(t0), foreign: fm.Stop(), proxyCPU: cpuOf(inst.pids()) - cpu0}
	for c, l := range lats {
		res.latency = append(res.latency, l...)
		res.errors += errs[c]
		if res.firstErr == nil {
			res.firstErr = firstErr[c]
		}
	}
	res.requests = len(res.latency)
	if res.requests == 0 {
		return nil, fmt.Errorf("no request succeeded: %w", res.firstErr)
	}
	res.bytes = int64(res.requests) * int64(len(want))
	_, res.upstream = r.up.count(mark, "")
	return res, nil
}

// fanInResult is the cold fan-in runs of one proxy, in front of the WAN
// upstream.
type fanInResult struct {
	// single is one client's cold download; total the time until all of
	// the fan-in clients had the whole package; slowest and fastest the
	// clients' own times in the last run.
	single, total     stats.Samples
	fastest, slowest  time.Duration
	upstreamPkg       []int // upstream GETs of the package per fan-in run
	upstreamBytes     []int64
	upstreamPkgSingle []int
}

// measureFanIn runs cfg.fanInSamples times: a fresh instance of e in
// front of the WAN upstream downloads the package for one client; another
// fresh instance gets cfg.fanIn concurrent requests for it at once. Both
// fetch InRelease first, untimed, as apt update does before a download.
func (r *run) measureFanIn(ctx context.Context, e engine) (*fanInResult, error) {
	res := &fanInResult{}
	for i := range r.cfg.fanInSamples {
		inst, err := r.startInstance(ctx, e, fmt.Sprintf("single-%d", i+1), r.up.wan)
		if err != nil {
			return nil, err
		}
		if _, err := timedGet(inst.base+metaPath, r.files.meta); err != nil {
			inst.stop()
			return nil, err
		}
		mark := r.up.mark()
		d, err := timedGet(inst.base+pkgPath, r.files.pkg)
		inst.stop()
		if err != nil {
			return nil, err
		}
		n, _ := r.up.count(mark, pkgPath)
		res.single = append(res.single, d)
		res.upstreamPkgSingle = append(res.upstreamPkgSingle, n)

		if inst, err = r.startInstance(ctx, e, fmt.Sprintf("fanin-%d", i+1), r.up.wan); err != nil {
			return nil, err
		}
		total, each, upstream, upBytes, err := r.fanIn(inst)
		inst.stop()
		if err != nil {
			return nil, err
		}
		res.total = append(res.total, total)
		res.upstreamPkg = append(res.upstreamPkg, upstream)
		res.upstreamBytes = append(res.upstreamBytes, upBytes)
		res.fastest, res.slowest = each.Quantile(0), each.Max()
	}
	r.cfg.logf("  %s fan-in: single %s, %d clients %s (p50 of %d), upstream requests %v", e.name,
		stats.Secs(res.single.P50()), r.cfg.fanIn, stats.Secs(res.total.P50()), len(res.total), res.upstreamPkg)
	return res, nil
}

// fanIn fetches InRelease, then has cfg.fanIn clients, each on its own
// connection, GET the package at once; it returns the time until the last
// had all of it, each client's time, and the upstream's GETs of the
// package and the bytes it sent for them.
func (r *run) fanIn(inst *instance) (time.Duration, stats.Samples, int, int64, error) {
	if _, err := timedGet(inst.base+metaPath, r.files.meta); err != nil {
		return 0, nil, 0, 0, err
	}
	n := r.cfg.fanIn
	each := make(stats.Samples, n)
	errs := make([]error, n)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	var t0 time.Time
	for i := range n {
		wg.Go(func() {
			hc := newClient(1)
			defer hc.Transport.(*http.Transport).CloseIdleConnections()
			buf := make([]byte, 256<<10)
			ready.Done()
			<-start
			errs[i] = get(hc, inst.base+pkgPath, r.files.pkg, buf)
			each[i] = time.Since(t0)
		})
	}
	ready.Wait()
	mark := r.up.mark()
	t0 = time.Now()
	close(start)
	wg.Wait()
	total := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return 0, nil, 0, 0, err
		}
	}
	up, _, upBytes := r.up.countBytes(mark, pkgPath)
	return total, each, up, upBytes, nil
}

// measureDirect times downloads of the package straight from the WAN
// upstream: what a single download costs without any proxy.
func (r *run) measureDirect() (stats.Samples, error) {
	var s stats.Samples
	for range r.cfg.fanInSamples {
		d, err := timedGet(r.up.wan+pkgPath, r.files.pkg)
		if err != nil {
			return nil, err
		}
		s = append(s, d)
	}
	return s, nil
}

func slug(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}
