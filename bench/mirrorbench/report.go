package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/stats"
)

// The targets.
const (
	targetRatio       = 1.0
	targetIncremental = 2 * time.Second
	targetRSSKiB      = 100 << 10
)

func walls(ms []measurement) stats.Samples {
	var s stats.Samples
	for _, m := range ms {
		s = append(s, m.wall)
	}
	return s
}

func peakRSS(ms []measurement) int64 {
	var p int64
	for _, m := range ms {
		p = max(p, m.rss)
	}
	return p
}

func secsList(s stats.Samples) string {
	var out []string
	for _, d := range s {
		out = append(out, stats.Secs(d))
	}
	return strings.Join(out, ", ")
}

// phase is one row of the summary: a format's initial or incremental
// syncs.
type phase struct {
	format, name string
	pick         func(*result) []measurement
}

func phases(formats []string) []phase {
	var out []phase
	for _, f := range formats {
		out = append(out,
			phase{f, "initial", func(r *result) []measurement { return r.initial }},
			phase{f, "incremental", func(r *result) []measurement { return r.incremental }})
	}
	return out
}

func (r *run) get(format, engine string) *result {
	return r.results[format+" "+engine]
}

// markdown is the report.
func (r *run) markdown() string {
	cfg := r.cfg
	d := &report.Doc{}
	up := r.up
	d.Printf("Upstreams, built once and served by nginx (one worker) on a loopback port, each signed\n" +
		"by an RSA 3072 key of their own (`upstream-key.asc`, the armored public key, given to\n" +
		"packyard and dnf; its binary form to aptly's gpgv):\n\n")
	if cfg.hasFormat("rpm") {
		d.Printf("- RPM: %s packages (%s; bench/internal/gen's packages plus a random payload file,\n"+
			"  a few KB to ~400 KB), `createrepo_c --no-database`, `repodata/repomd.xml.asc` (detached,\n"+
			"  armored); for the incremental sync %d more packages (%s) and `createrepo_c --update`.\n",
			stats.Thousands(cfg.n), mb(up.rpmBytesInit), cfg.extra, mb(up.rpmBytesExtra))
	}
	if cfg.hasFormat("deb") {
		d.Printf("- APT: %s packages (%s; `debtest.Corpus`, amd64 and all, plus a random payload file),\n"+
			"  `pool/main/…`, `dists/stable/main/binary-amd64/Packages{,.gz,.xz}` from `apt-ftparchive`,\n"+
			"  `Release`, `InRelease` (clearsigned) and `Release.gpg`; for the incremental sync %d more\n"+
			"  packages (%s) and the indexes made and signed again.\n",
			stats.Thousands(cfg.n), mb(up.debBytesInit), cfg.extra, mb(up.debBytesExtra))
	}
	d.Printf("\nEach sample starts from an empty mirror: the initial sync of the upstream, then the\n" +
		"incremental sync, by the same tool into the same mirror, once the new packages are\n" +
		"published. Commands (timed wall-clock, start to exit):\n\n")
	if cfg.uses(engPackyard) {
		until := "timed until it has returned and the\n  repository's published index lists every package (polled every 20 ms)."
		if !cfg.verify {
			until = "timed until it returns."
		}
		d.Printf("- packyard: a fresh `packyard serve` (embedded defaults: SQLite + fs) per sample and\n"+
			"  format; `packyard repo create up-FORMAT --kind mirror --upstream URL --upstream-key\n"+
			"  upstream-key.asc` (deb: `--distribution stable --component main --architectures amd64`),\n"+
			"  untimed; then `packyard mirror sync up-FORMAT`, %s\n"+
			"  Peak RSS is the server's VmHWM after the sync (reset to its VmRSS before the incremental\n"+
			"  sync, through `/proc/PID/clear_refs`).\n", until)
	}
	if cfg.uses(engDnf) && cfg.hasFormat("rpm") {
		d.Printf("- dnf reposync (dnf 4, dnf-plugins-core): `dnf -c dnf.conf --releasever=bench -y --refresh\n" +
			"  reposync --repoid=up --download-metadata --norepopath -p DIR`, a private configuration\n" +
			"  (cachedir, persistdir, reposdir) and `[up]` with `repo_gpgcheck=1`, `gpgkey=file://…/upstream-key.asc`,\n" +
			"  `gpgcheck=0` (the packages are unsigned), `metadata_expire=0`, default parallel downloads (3).\n" +
			"  Peak RSS: GNU time's %%M.\n")
	}
	if cfg.uses(engAptly) && cfg.hasFormat("deb") {
		d.Printf("- aptly: a private `-config` (rootDir in the scratch directory, `architectures: [amd64]`,\n" +
			"  default download concurrency 4) and GnuPG home; `aptly mirror create -keyring=upstream-key.gpg\n" +
			"  -architectures=amd64 up-deb URL stable main`, untimed; then `aptly mirror update\n" +
			"  -keyring=upstream-key.gpg up-deb`. Peak RSS: GNU time's %%M (the largest of aptly and the\n" +
			"  gpgv it runs).\n")
	}
	if cfg.verify {
		d.Printf("\nAfter every sync the mirror is checked: every package there, with the upstream's size\n" +
			"(bytes compared for the last ten); for packyard, the published index lists every package\n" +
			"and the last ten files served are the upstream's bytes.\n")
	}
	d.Printf("\nRun: %s mode, %d sample(s) per tool and sync (median time; peak RSS is the largest).\n\n",
		map[bool]string{true: "quick", false: "full"}[cfg.quick], cfg.samples)

	d.Printf("| sync | packyard | anchor | anchor time | packyard ÷ anchor | packyard peak RSS | anchor peak RSS |\n")
	d.Printf("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, ph := range phases(cfg.formats) {
		anchor := anchorOf[ph.format]
		p, a := r.get(ph.format, engPackyard), r.get(ph.format, anchor)
		cell := func(x *result, f func([]measurement) string) string {
			if x == nil || len(ph.pick(x)) == 0 {
				return "—"
			}
			return f(ph.pick(x))
		}
		med := func(ms []measurement) string { return stats.Secs(walls(ms).P50()) }
		rss := func(ms []measurement) string { return stats.MiB(peakRSS(ms)) }
		ratio := "—"
		if p != nil && a != nil && len(ph.pick(p)) > 0 && len(ph.pick(a)) > 0 {
			ratio = stats.FmtRatio(stats.Ratio(walls(ph.pick(p)).P50(), walls(ph.pick(a)).P50()))
		}
		d.Printf("| %s %s | %s | %s | %s | %s | %s | %s |\n", ph.format, ph.name, cell(p, med), anchor,
			cell(a, med), ratio, cell(p, rss), cell(a, rss))
	}

	r.targets(d)
	r.details(d)
	return d.String()
}

// targets writes the targets with a verdict, or says why there
// is none.
func (r *run) targets(d *report.Doc) {
	cfg := r.cfg
	if !cfg.uses(engPackyard) {
		d.Printf("\npackyard was not measured in this run (`-engines %s`): no verdict on the targets\n"+
			"(initial sync ≤ %.1f× the anchor, incremental ≤ %s, peak RSS ≤ %s).\n",
			strings.Join(engineFlags(cfg.engines), ","), targetRatio, stats.Secs(targetIncremental), stats.MiB(targetRSSKiB))
		return
	}
	var ts []report.Target
	var peak int64
	for _, f := range cfg.formats {
		p := r.get(f, engPackyard)
		if p == nil {
			continue
		}
		if a := r.get(f, anchorOf[f]); a != nil && len(a.initial) > 0 {
			ratio := stats.Ratio(walls(p.initial).P50(), walls(a.initial).P50())
			ts = append(ts, report.Target{
				Goal:     fmt.Sprintf("%s initial sync ≤ %.1f× %s", f, targetRatio, anchorOf[f]),
				Measured: fmt.Sprintf("%s (%s vs %s)", stats.FmtRatio(ratio), stats.Secs(walls(p.initial).P50()), stats.Secs(walls(a.initial).P50())),
				Met:      ratio <= targetRatio,
			})
		}
		inc := walls(p.incremental).P50()
		ts = append(ts, report.Target{
			Goal:     fmt.Sprintf("%s incremental sync (%d new packages) ≤ %s", f, cfg.extra, stats.Secs(targetIncremental)),
			Measured: stats.Secs(inc),
			Met:      inc <= targetIncremental,
		})
		peak = max(peak, peakRSS(p.initial), peakRSS(p.incremental))
	}
	ts = append(ts, report.Target{
		Goal:     fmt.Sprintf("peak RSS ≤ %s", stats.MiB(targetRSSKiB)),
		Measured: stats.MiB(peak) + " (server VmHWM, largest sync)",
		Met:      peak <= targetRSSKiB,
	})
	d.Targets("issue 7", ts)
}

func engineFlags(engines []string) []string {
	var out []string
	for _, e := range engines {
		out = append(out, shortName(e))
	}
	return out
}

// details writes every sample and what each sync asked of the upstream.
func (r *run) details(d *report.Doc) {
	cfg := r.cfg
	d.Printf("\n| detail | tool | initial | incremental |\n| --- | --- | --- | --- |\n")
	for _, f := range cfg.formats {
		for _, e := range r.enginesFor(f) {
			x := r.get(f, e)
			if x == nil {
				continue
			}
			row := func(label string, cell func([]measurement) string) {
				d.Printf("| %s %s | %s | %s | %s |\n", f, label, e, cell(x.initial), cell(x.incremental))
			}
			row("samples", func(ms []measurement) string { return secsList(walls(ms)) })
			row("upstream requests / bytes (median)", func(ms []measurement) string {
				var req, by []int64
				for _, m := range ms {
					req = append(req, int64(m.requests))
					by = append(by, m.bytes)
				}
				return fmt.Sprintf("%d / %s", medianInt(req), mb(medianInt(by)))
			})
			row("CPU time, user+sys (median)", func(ms []measurement) string {
				var s stats.Samples
				for _, m := range ms {
					s = append(s, m.cpu)
				}
				return stats.Secs(s.P50())
			})
			if e == engPackyard {
				row("sync by the server's record, finished_at − started_at (median; `mirror sync` learns the end at once: it follows the sync with `GET …/syncs/ID?wait=1s`)", func(ms []measurement) string {
					var s stats.Samples
					for _, m := range ms {
						if m.server > 0 {
							s = append(s, m.server)
						}
					}
					switch {
					case len(s) == 0:
						return "—"
					case len(s) < len(ms):
						// A record without finished_at: the command
						// returned before the server had finished.
						return fmt.Sprintf("%s (%d of %d samples had finished_at)", stats.Secs(s.P50()), len(s), len(ms))
					}
					return stats.Secs(s.P50())
				})
			}
			if e == engPackyard && cfg.verify {
				row("of which after `mirror sync` returned, until the index listed every package (median)", func(ms []measurement) string {
					var s stats.Samples
					for _, m := range ms {
						s = append(s, m.lag)
					}
					return stats.Secs(s.P50())
				})
			}
			if e == engPackyard {
				row("server VmHWM before the sync (incremental: the VmRSS it was reset to) / `packyard` CLI peak RSS (largest)", func(ms []measurement) string {
					var b, c int64
					for _, m := range ms {
						b, c = max(b, m.baseline), max(c, m.cliRSS)
					}
					return stats.MiB(b) + " / " + stats.MiB(c)
				})
			}
			row("CPU of other processes (largest share of both cores)", func(ms []measurement) string {
				var s float64
				for _, m := range ms {
					s = max(s, m.foreign.Share())
				}
				return fmt.Sprintf("%.0f%%", 100*s)
			})
			setup := "server start + `repo create`"
			switch e {
			case engAptly:
				setup = "`aptly mirror create`"
			case engDnf:
				setup = "writing the configuration"
			}
			d.Printf("| %s setup before the initial sync (%s; untimed, median) | %s | %s | |\n", f, setup, e, stats.Secs(x.setup.P50()))
		}
	}
}

func medianInt(xs []int64) int64 {
	var s stats.Samples
	for _, x := range xs {
		s = append(s, time.Duration(x))
	}
	return int64(s.P50())
}
