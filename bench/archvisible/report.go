package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/stats"
)

type summary struct {
	cfg               *config
	started, finished time.Time
	corpusBytes       int64
	corpusFiles       int
	tmpdir            string // repo-add's default TMPDIR
	rows              []report.Row
	runs              []map[string]*toolRun // by row, then tool
	missed            int
}

// Issue 6's targets: packyard's p50 at the smaller N at most this share of
// repo-add's, and "a nearly flat curve" to the larger N, read here as a
// p50 at the larger N at most this multiple of the p50 at the smaller.
const (
	targetRatio = 0.02
	targetFlat  = 1.5
)

func (r *summary) markdown() string {
	var d report.Doc
	cfg := r.cfg

	mode := "full"
	if cfg.quick {
		mode = "quick (smoke run: the targets are stated for N = 500 and 20,000 and are applied here to the smaller sizes)"
	}
	d.Printf("Run: %s, %s mode, %d samples per tool and N; corpus of %s pacman packages (%.1f MB) from `archtest.Corpus(n, %d)`.\n\n",
		r.started.Format("2006-01-02 15:04 MST"), mode, cfg.samples, stats.Thousands(r.corpusFiles), float64(r.corpusBytes)/1e6, cfg.seed)
	d.SampleTable(r.rows, cfg.tools)
	d.Commands(cfg.tools, map[string]string{
		toolPackyard:     "`PUT /api/v1/repos/bench/packages/FILE` (answers once the package is in the published generation, whose databases are signed)",
		toolRepoAdd:      fmt.Sprintf("`repo-add -q -s -k KEY R.db.tar.gz FILE` with the default TMPDIR (%s, %s)", r.tmpdir, fsType(r.tmpdir)),
		toolRepoAddTmpfs: fmt.Sprintf("the same with `TMPDIR` in %s (%s)", cfg.tmpfs, fsType(cfg.tmpfs)),
	})
	if slices.Contains(cfg.tools, toolPackyard) {
		d.RatioTable(r.rows, toolPackyard, slices.DeleteFunc(slices.Clone(cfg.tools), func(t string) bool { return t == toolPackyard }))
	}

	var details []report.Detail
	if slices.Contains(cfg.tools, toolPackyard) {
		details = append(details, report.ServerDetail(toolPackyard))
	}
	var sizes []string
	for _, t := range cfg.tools {
		switch t {
		case toolPackyard:
			sizes = append(sizes, "packyard: x86_64/bench.db + .files")
		case toolRepoAdd:
			sizes = append(sizes, "repo-add: R.db.tar.gz + R.files.tar.gz")
		}
	}
	details = append(details, report.Detail{
		Label: "databases after the samples (" + strings.Join(sizes, "; ") + "), packages listed",
		Cell: func(x report.Row) string {
			var s []string
			for _, t := range cfg.tools {
				if t == toolRepoAddTmpfs {
					continue
				}
				run := r.run(x, t)
				s = append(s, fmt.Sprintf("%s, %s", megabytes(run.dbBytes), stats.Thousands(run.dbEntries)))
			}
			return strings.Join(s, " / ")
		},
	})
	if len(r.rows) > 1 {
		details = append(details, report.Detail{
			Label: fmt.Sprintf("p50 at N ÷ p50 at N = %s (%s)", stats.Thousands(r.rows[0].N), strings.Join(cfg.tools, " / ")),
			Cell: func(x report.Row) string {
				var s []string
				for _, t := range cfg.tools {
					s = append(s, stats.FmtRatio(stats.Ratio(x.Results[t].Samples.P50(), r.rows[0].Results[t].Samples.P50())))
				}
				return strings.Join(s, " / ")
			},
		})
	}
	details = append(details, report.ForeignDetail(cfg.tools, "packyard: preload and samples, repo-add: samples"))
	d.DetailTable(r.rows, details)

	var ts []report.Target
	first, last := r.rows[0], r.rows[len(r.rows)-1]
	if slices.Contains(cfg.tools, toolPackyard) && slices.Contains(cfg.tools, toolRepoAdd) {
		p, a := first.Results[toolPackyard].Samples.P50(), first.Results[toolRepoAdd].Samples.P50()
		ratio := stats.Ratio(p, a)
		ts = append(ts, report.Target{
			Goal:     fmt.Sprintf("upload→visible ≤ %.2f× `repo-add` at N = %s (p50, signing included)", targetRatio, stats.Thousands(first.N)),
			Measured: fmt.Sprintf("%s vs %s = %s", stats.MS(p), stats.MS(a), stats.FmtRatio(ratio)),
			Met:      ratio <= targetRatio,
		})
	}
	if slices.Contains(cfg.tools, toolPackyard) && len(r.rows) > 1 {
		p0, p1 := first.Results[toolPackyard].Samples.P50(), last.Results[toolPackyard].Samples.P50()
		ratio := stats.Ratio(p1, p0)
		ts = append(ts, report.Target{
			Goal: fmt.Sprintf("a nearly flat curve to N = %s: packyard's p50 there ≤ %.1f× its p50 at N = %s", stats.Thousands(last.N),
				targetFlat, stats.Thousands(first.N)),
			Measured: fmt.Sprintf("%s vs %s = %s", stats.MS(p1), stats.MS(p0), stats.FmtRatio(ratio)),
			Met:      ratio <= targetFlat,
		})
	}
	if len(ts) > 0 {
		r.missed = d.Targets("issue 6", ts)
	}
	d.Printf("\nTotal benchmark time: %s.\n", r.finished.Sub(r.started).Round(time.Second))
	return d.String()
}

// run returns tool t's run at row x.
func (r *summary) run(x report.Row, t string) *toolRun {
	for i, row := range r.rows {
		if row.N == x.N {
			return r.runs[i][t]
		}
	}
	return nil
}

// megabytes formats a size in bytes as MB, or kB below 1 MB.
func megabytes(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
