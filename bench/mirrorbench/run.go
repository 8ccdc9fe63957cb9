package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/nginx"
	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/stats"
)

// run is one benchmark run: its settings, upstream and results.
type run struct {
	cfg *config
	up  *upstreamStates
	srv *upstreamServer
	// results are keyed by format + " " + engine.
	results map[string]*result
}

// result is every sync of one tool on one format.
type result struct {
	format, engine string
	initial        []measurement
	incremental    []measurement
	// setup is what the tool needed before its first sync (server start
	// and repository creation, `aptly mirror create`), per sample.
	setup stats.Samples
}

// measurement is one timed sync.
type measurement struct {
	wall time.Duration
	// rss is the peak resident memory (KiB) of the process that did the
	// work: the command's (wait4), or packyard's server's (VmHWM).
	rss int64
	// baseline is, for packyard, the server's VmHWM before the sync: after
	// startup for an initial sync, the VmRSS it was reset to for an
	// incremental one. cliRSS is the `packyard mirror sync` client's peak.
	baseline, cliRSS int64
	// lag is, for packyard, how long after `packyard mirror sync`
	// returned the published index listed every package (wall includes
	// it).
	lag time.Duration
	// server is, for packyard, the sync's own duration by the server's
	// record (finished_at − started_at), 0 if unknown.
	server time.Duration
	// phases are the seconds of each phase of packyard's sync record.
	phases map[string]float64
	// cpu is the CPU time of the tool (the command and its children, or
	// the server plus the client).
	cpu time.Duration
	// The upstream's log since the sync started.
	requests, failed int
	bytes            int64
	foreign          *proc.Foreign
}

// syncer is one tool mirroring one upstream into its own scratch
// directory: the initial sync into an empty mirror, then the incremental
// one after the upstream changed.
type syncer interface {
	// sync runs one sync, after which the mirror is to hold want, and
	// returns its time and peak memory.
	sync(ctx context.Context, incremental bool, want []corpus.File) (measurement, error)
	// verify checks that the mirror holds exactly want.
	verify(ctx context.Context, want []corpus.File) error
	// pids are long-running processes whose CPU time is the tool's.
	pids() []int
	close()
}

// newSyncer makes a tool's syncer for a format, ready for its initial
// sync of the upstream at url.
type newSyncer func(ctx context.Context, cfg *config, up *upstreamStates, format, url, dir string) (syncer, error)

var syncers = map[string]newSyncer{
	engPackyard: newPackyardSyncer,
	engDnf:      newDnfSyncer,
	engAptly:    newAptlySyncer,
}

// enginesFor are the tools measured on format, packyard first.
func (r *run) enginesFor(format string) []string {
	var out []string
	for _, e := range []string{engPackyard, engDnf, engAptly} {
		if !r.cfg.uses(e) {
			continue
		}
		if (e == engDnf && format != "rpm") || (e == engAptly && format != "deb") {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (r *run) result(format, engine string) *result {
	k := format + " " + engine
	if r.results[k] == nil {
		r.results[k] = &result{format: format, engine: engine}
	}
	return r.results[k]
}

// all runs every sample: per format, every tool's initial sync of the
// initial upstream, then the upstream gets its new packages, then every
// tool's incremental sync. The tools' order alternates between samples.
func (r *run) all(ctx context.Context) error {
	cfg := r.cfg
	for s := range cfg.samples {
		for _, format := range cfg.formats {
			engines := r.enginesFor(format)
			if s%2 == 1 {
				slices.Reverse(engines)
			}
			if err := r.sample(ctx, s, format, engines); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *run) files(format string) []corpus.File {
	if format == "rpm" {
		return r.up.rpms
	}
	return r.up.debs
}

func (r *run) sample(ctx context.Context, s int, format string, engines []string) error {
	cfg := r.cfg
	if err := r.srv.setState(format, "initial"); err != nil {
		return err
	}
	url := r.srv.base + format + "/"
	var open []syncer
	defer func() {
		for _, sy := range open {
			sy.close()
		}
	}()
	dirs := map[string]string{}
	for _, e := range engines {
		dir := filepath.Join(cfg.work, fmt.Sprintf("%s-%s-%d", format, shortName(e), s+1))
		dirs[e] = dir
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		t0 := time.Now()
		sy, err := syncers[e](ctx, cfg, r.up, format, url, dir)
		if err != nil {
			return fmt.Errorf("%s, %s: %w", e, format, err)
		}
		open = append(open, sy)
		res := r.result(format, e)
		res.setup = append(res.setup, time.Since(t0))
		m, err := r.measure(ctx, sy, false, r.files(format)[:cfg.n])
		if err != nil {
			return fmt.Errorf("%s, %s initial sync: %w", e, format, err)
		}
		if cfg.verify {
			if err := sy.verify(ctx, r.files(format)[:cfg.n]); err != nil {
				return fmt.Errorf("%s, %s after the initial sync: %w", e, format, err)
			}
		}
		res.initial = append(res.initial, m)
		cfg.logf("sample %d/%d, %s, %s: initial sync %s, peak RSS %s%s", s+1, cfg.samples, format, e,
			stats.Secs(m.wall), stats.MiB(m.rss), r.logTail(m))
	}
	if err := r.srv.setState(format, "incremental"); err != nil {
		return err
	}
	for i, e := range engines {
		sy := open[i]
		m, err := r.measure(ctx, sy, true, r.files(format))
		if err != nil {
			return fmt.Errorf("%s, %s incremental sync: %w", e, format, err)
		}
		if cfg.verify {
			if err := sy.verify(ctx, r.files(format)); err != nil {
				return fmt.Errorf("%s, %s after the incremental sync: %w", e, format, err)
			}
		}
		res := r.result(format, e)
		res.incremental = append(res.incremental, m)
		cfg.logf("sample %d/%d, %s, %s: incremental sync %s, peak RSS %s%s", s+1, cfg.samples, format, e,
			stats.Secs(m.wall), stats.MiB(m.rss), r.logTail(m))
	}
	// Each sample's data stays until the run ends (the scratch directory
	// goes then): on a journal-less ext4, such as the benchmark VM's, the
	// inode allocator skips inodes freed in the last minutes at a cost of
	// about 0.8 ms of CPU per new file, so deleting one sample's files
	// just before the next would slow down whichever tool comes next.
	for _, sy := range open {
		sy.close()
	}
	open = nil
	return nil
}

func (r *run) logTail(m measurement) string {
	s := fmt.Sprintf(" (%d upstream requests, %s", m.requests, mb(m.bytes))
	if m.failed > 0 {
		s += fmt.Sprintf(", %d failed", m.failed)
	}
	if m.server > 0 {
		s += fmt.Sprintf("; %s by the server's sync record", stats.Secs(m.server))
	}
	if len(m.phases) > 0 {
		names := slices.Sorted(maps.Keys(m.phases))
		for i, k := range names {
			names[i] = fmt.Sprintf("%s %.3f s", k, m.phases[k])
		}
		s += " (" + strings.Join(names, ", ") + ")"
	}
	if m.lag > 0 {
		s += fmt.Sprintf("; published %s after the command returned", stats.Secs(m.lag))
	}
	if m.baseline > 0 {
		s += fmt.Sprintf("; server VmHWM before %s", stats.MiB(m.baseline))
	}
	return s + fmt.Sprintf("; other processes %.0f%% CPU)", 100*m.foreign.Share())
}

// measure runs one sync, with the upstream's requests and the CPU other
// processes took meanwhile.
func (r *run) measure(ctx context.Context, sy syncer, incremental bool, want []corpus.File) (measurement, error) {
	mark := r.srv.log.Mark()
	fm := proc.StartForeign(append(r.srv.PIDs(), sy.pids()...)...)
	m, err := sy.sync(ctx, incremental, want)
	m.foreign = fm.Stop()
	if err != nil {
		return m, err
	}
	// nginx writes the log line when a request ends: all have by now.
	m.requests, m.failed, m.bytes = r.srv.log.Totals(mark)
	return m, nil
}

func shortName(engine string) string {
	switch engine {
	case engDnf:
		return "dnf"
	}
	return engine
}

// upstreamServer is the nginx that serves the upstreams: WWW/rpm and
// WWW/deb are symbolic links to a state's trees, switched between syncs.
type upstreamServer struct {
	*nginx.Server
	base   string // http://127.0.0.1:PORT/
	log    nginx.AccessLog
	www    string
	states string
}

// serveUpstream starts nginx (one worker) on a free loopback port.
func serveUpstream(cfg *config, up *upstreamStates) (*upstreamServer, error) {
	u := &upstreamServer{www: filepath.Join(cfg.work, "www"), states: up.dir}
	if err := os.MkdirAll(u.www, 0o755); err != nil {
		return nil, err
	}
	for _, f := range []string{"rpm", "deb"} {
		if err := u.setState(f, "initial"); err != nil {
			return nil, err
		}
	}
	addr, err := nginx.FreeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.work, "nginx")
	u.log = nginx.AccessLog(filepath.Join(dir, "access.log"))
	u.base = "http://" + addr + "/"
	block := fmt.Sprintf(`
	%s
	access_log %s bench;
	server {
		listen %s;
		root %s;
	}
`, nginx.LogFormat, u.log, addr, u.www)
	if u.Server, err = nginx.Start(cfg.nginx, dir, 1, block); err != nil {
		return nil, fmt.Errorf("upstream nginx: %w", err)
	}
	if err := nginx.WaitHTTP(u.base, u.Done, 30*time.Second); err != nil {
		u.Stop()
		return nil, fmt.Errorf("upstream nginx: %w (see %s)", err, dir)
	}
	cfg.logf("upstream: nginx on %s", u.base)
	return u, nil
}

// setState points WWW/format at the state's tree, atomically.
func (u *upstreamServer) setState(format, state string) error {
	link := filepath.Join(u.www, format)
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join(u.states, state, format), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}
