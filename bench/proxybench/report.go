package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/stats"
)

const (
	nameP = "packyard"
	nameN = "nginx proxy_cache"
)

func (r *run) result(name string) *engineResult {
	for _, x := range r.results {
		if x.name == name {
			return x
		}
	}
	return nil
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// spread is "min – max" of samples, or "" for one sample.
func spread(s stats.Samples, format func(d stats.Samples) (string, string)) string {
	if len(s) < 2 {
		return "—"
	}
	lo, hi := format(s)
	return lo + " – " + hi
}

func msSpread(s stats.Samples) string {
	return spread(s, func(s stats.Samples) (string, string) { return stats.MS(s.Quantile(0)), stats.MS(s.Max()) })
}

func ints(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ", ")
}

// fratio is a / b, NaN when either is missing.
func fratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// markdown is the report.
func (r *run) markdown() string {
	cfg := r.cfg
	d := &report.Doc{}
	pkgName := sizeName(len(r.files.pkg)) + " package"
	d.Printf("Upstream: nginx serving a signed APT repository built with apt-ftparchive:\n"+
		"`%s` (%s; metadata: a pointer file to packyard, a volatile file to\n"+
		"apt-cacher-ng) and a %s (`.deb` under `pool/`, %d bytes, random\n"+
		"payload, stored uncompressed), on two loopback ports: one at loopback speed for the cold\n"+
		"and warm runs, one with `limit_rate %s` (bytes/s per connection) for the\n"+
		"fan-in, standing for a mirror across the internet. In front of it, each on\n"+
		"its own loopback port and started with an empty cache: packyard (a `deb`\n"+
		"proxy repository, `max_age` 1h, SQLite + fs), nginx `proxy_cache`\n"+
		"(`proxy_cache_valid 200 1h`, `proxy_cache_lock on`, keep-alive upstream, one\n"+
		"worker per core) and apt-cacher-ng (a `Remap-` rule to the upstream,\n"+
		"`FreshIndexMaxAge: 3600`). The clients are Go `net/http` on the same\n"+
		"machine; every byte of every answer is compared with the upstream's file.\n\n",
		metaPath, sizeName(len(r.files.meta)), pkgName, len(r.files.pkg), cfg.wanRate)

	d.Printf("#### Cold: first fetch from an empty cache\n\n")
	d.Printf("A new proxy per sample (%d per proxy), fast upstream; InRelease first, then\n"+
		"the package, each on a new connection, timed to the last byte.\n\n", cfg.coldSamples)
	d.Printf("| proxy | InRelease p50 | min – max | %s p50 | min – max | upstream requests per sample |\n", pkgName)
	d.Printf("| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, x := range r.results {
		c := x.cold
		d.Printf("| %s | %s | %s | %s | %s | %s |\n", x.name, stats.MS(c.meta.P50()), msSpread(c.meta),
			stats.MS(c.pkg.P50()), msSpread(c.pkg), ints(c.upstream))
	}
	d.Printf("\npackyard fetches InRelease as a group, with Release, Release.gpg and every\n" +
		"index file Release names (checked against its digests) before it answers:\n" +
		"hence more upstream requests; nginx and apt-cacher-ng fetch the one file.\n")

	d.Printf("\n#### Warm: served from the cache\n\n")
	d.Printf("On the last cold proxies: %d keep-alive clients GET InRelease, then %d GET the\n"+
		"package, for %s each (one untimed request per client first), in %d rounds\n"+
		"that take the proxies in turn; each proxy's median run is shown (every run's\n"+
		"figure below the table).\n\n", cfg.metaClients, cfg.pkgClients, cfg.warmFor, cfg.warmRounds)
	d.Printf("| proxy | InRelease req/s | p50 | p99 | %s MiB/s | req/s | p50 | failed requests (InRelease / package) | upstream requests during the runs | proxy's CPU per request (InRelease / package) | CPU of other processes (InRelease / package) |\n", pkgName)
	d.Printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var failures []string
	for _, x := range r.results {
		m, p := x.warmMeta, x.warmPkg
		d.Printf("| %s | %.0f | %s | %s | %.0f | %.1f | %s | %d / %d | %d / %d | %s / %s | %.0f%% / %.0f%% |\n", x.name, m.reqPerSec(),
			stats.MS(m.latency.P50()), stats.MS(m.latency.Quantile(0.99)), p.mibPerSec(), p.reqPerSec(),
			stats.MS(p.latency.P50()), m.errors, p.errors, m.upstream, p.upstream, micros(m.cpuPerRequest()), micros(p.cpuPerRequest()),
			100*m.foreign.Share(), 100*p.foreign.Share())
		for _, w := range []*warmResult{m, p} {
			if w.firstErr != nil {
				failures = append(failures, fmt.Sprintf("%s: %s", x.name, firstLine(w.firstErr.Error())))
			}
		}
	}
	d.Printf("\nRuns, in order (InRelease req/s; package MiB/s):\n\n")
	for _, x := range r.results {
		d.Printf("- %s: %s; %s\n", x.name, figures(x.warmMeta.rounds, "%.0f"), figures(x.warmPkg.rounds, "%.0f"))
	}
	d.Printf("\nOnly answers whose every byte matched count in the rates and latencies.\n" +
		"apt-cacher-ng treats InRelease as volatile and checks it with the upstream\n" +
		"(a ranged GET) on most requests, `FreshIndexMaxAge` notwithstanding: see\n" +
		"the upstream requests.\n")
	if len(failures) > 0 {
		d.Printf("\nFirst failure of each run that had one:\n\n")
		for _, f := range failures {
			d.Printf("- %s\n", f)
		}
	}

	d.Printf("\n#### Cold fan-in\n\n")
	d.Printf("Upstream limited to %s bytes/s per connection. Per run (%d per proxy), two\n"+
		"new proxies, each after an untimed GET of InRelease (as apt update does\n"+
		"before a download): one serves the package to a single client; the other\n"+
		"gets %d clients, each on its own connection, asking for it at once, timed\n"+
		"until the last has every byte.\n\n", cfg.wanRate, cfg.fanInSamples, cfg.fanIn)
	d.Printf("| proxy | one client, cold | %d clients at once: all done | ÷ one client | fastest – slowest client (last run) | upstream GETs of the package, %d clients (MiB sent) | upstream GETs, one client |\n", cfg.fanIn, cfg.fanIn)
	d.Printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, x := range r.results {
		f := x.fanIn
		var mib []string
		for _, b := range f.upstreamBytes {
			mib = append(mib, fmt.Sprintf("%.0f", float64(b)/(1<<20)))
		}
		d.Printf("| %s | %s | %s | %s | %s – %s | %s (%s) | %s |\n", x.name, stats.Secs(f.single.P50()), stats.Secs(f.total.P50()),
			stats.FmtRatio(stats.Ratio(f.total.P50(), f.single.P50())), stats.Secs(f.fastest), stats.Secs(f.slowest),
			ints(f.upstreamPkg), strings.Join(mib, ", "), ints(f.upstreamPkgSingle))
	}
	if len(r.direct) > 0 {
		d.Printf("| no proxy (straight from the upstream) | %s | — | — | — | — | — |\n", stats.Secs(stats.Samples(r.direct).P50()))
	}
	d.Printf("\nnginx's `proxy_cache_lock` holds the other requests until the file is in\n" +
		"the cache, and they check for it every 500 ms; packyard and apt-cacher-ng\n" +
		"serve every waiting client from the one download as its bytes arrive.\n")
	if cfg.fanInSamples > 1 {
		d.Printf("Times are the p50 of the runs.\n")
	}

	p, n := r.result(nameP), r.result(nameN)
	if p == nil || n == nil {
		return d.String()
	}
	d.Printf("\n#### packyard ÷ nginx proxy_cache\n\n")
	d.Printf("| figure | packyard | nginx proxy_cache | packyard ÷ nginx |\n| --- | ---: | ---: | ---: |\n")
	row := func(label, a, b string, ratio float64) {
		d.Printf("| %s | %s | %s | %s |\n", label, a, b, stats.FmtRatio(ratio))
	}
	pm, nm := p.warmMeta.reqPerSec(), n.warmMeta.reqPerSec()
	row("warm InRelease req/s (higher is better)", fmt.Sprintf("%.0f", pm), fmt.Sprintf("%.0f", nm), fratio(pm, nm))
	row("warm InRelease p50 latency", stats.MS(p.warmMeta.latency.P50()), stats.MS(n.warmMeta.latency.P50()),
		stats.Ratio(p.warmMeta.latency.P50(), n.warmMeta.latency.P50()))
	row("warm InRelease p99 latency", stats.MS(p.warmMeta.latency.Quantile(0.99)), stats.MS(n.warmMeta.latency.Quantile(0.99)),
		stats.Ratio(p.warmMeta.latency.Quantile(0.99), n.warmMeta.latency.Quantile(0.99)))
	pp, np := p.warmPkg.mibPerSec(), n.warmPkg.mibPerSec()
	row("warm package MiB/s (higher is better)", fmt.Sprintf("%.0f", pp), fmt.Sprintf("%.0f", np), fratio(pp, np))
	row("cold InRelease", stats.MS(p.cold.meta.P50()), stats.MS(n.cold.meta.P50()), stats.Ratio(p.cold.meta.P50(), n.cold.meta.P50()))
	row("cold package", stats.MS(p.cold.pkg.P50()), stats.MS(n.cold.pkg.P50()), stats.Ratio(p.cold.pkg.P50(), n.cold.pkg.P50()))
	row(fmt.Sprintf("cold fan-in, %d clients: all done", cfg.fanIn), stats.Secs(p.fanIn.total.P50()), stats.Secs(n.fanIn.total.P50()),
		stats.Ratio(p.fanIn.total.P50(), n.fanIn.total.P50()))

	fan := stats.Ratio(p.fanIn.total.P50(), p.fanIn.single.P50())
	d.Targets("issue 8", []report.Target{
		{Goal: "warm metadata req/s ≥ 0.8× nginx proxy_cache", Measured: fmt.Sprintf("%.0f vs %.0f req/s: %s%s", pm, nm, stats.FmtRatio(fratio(pm, nm)), failed(p.warmMeta)),
			Met: fratio(pm, nm) >= 0.8 && p.warmMeta.errors == 0},
		{Goal: "warm package MB/s ≥ 0.9× nginx proxy_cache", Measured: fmt.Sprintf("%.0f vs %.0f MiB/s: %s%s", pp, np, stats.FmtRatio(fratio(pp, np)), failed(p.warmPkg)),
			Met: fratio(pp, np) >= 0.9 && p.warmPkg.errors == 0},
		{Goal: fmt.Sprintf("cold fan-in (%d clients) total time ≤ 1.2× a single download", cfg.fanIn),
			Measured: fmt.Sprintf("%s vs %s: %s; upstream GETs %s", stats.Secs(p.fanIn.total.P50()), stats.Secs(p.fanIn.single.P50()),
				stats.FmtRatio(fan), ints(p.fanIn.upstreamPkg)),
			Met: fan <= 1.2},
	})
	d.Printf("\nEverything (upstream, proxies, clients) runs on the one machine described above.\n")
	return d.String()
}

// failed notes packyard's failed requests in a target's measurement.
func failed(w *warmResult) string {
	if w.errors == 0 {
		return ""
	}
	return fmt.Sprintf("; %d requests failed", w.errors)
}

// firstLine is the start of an error message, without an HTML body.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s, _, _ = strings.Cut(s, ": <") // an HTML error page
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// figures formats every run's figure, comma-separated.
func figures(v []float64, verb string) string {
	out := make([]string, len(v))
	for i, f := range v {
		out[i] = fmt.Sprintf(verb, f)
	}
	return strings.Join(out, ", ")
}

// micros formats d in microseconds.
func micros(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}
