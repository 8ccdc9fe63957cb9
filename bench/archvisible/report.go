package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/gnupg"
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
// repo-add's (each signing with a key of the same algorithm), and "a
// nearly flat curve" to the larger N, read here as a p50 at the larger N
// at most this multiple of the p50 at the smaller.
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
	if note := r.skipNote(); note != "" {
		d.Printf("\n%s\n", note)
	}
	rsa, ed := gnupg.AlgorithmName(gnupg.RSA3072), gnupg.AlgorithmName(gnupg.Ed25519)
	d.Commands(cfg.tools, map[string]string{
		toolPackyard: fmt.Sprintf("`PUT /api/v1/repos/bench/packages/FILE` (answers once the package is in the published generation, "+
			"whose databases are signed with the server's default key: %s, the default algorithm)", rsa),
		toolPackyardEd25519: fmt.Sprintf("the same PUT to a server started with `PACKYARD_DEFAULT_KEY_ALGORITHM=ed25519`, whose default key is %s", ed),
		toolRepoAdd: fmt.Sprintf("`repo-add -q -s -k KEY R.db.tar.gz FILE` with an %s gpg key and the default TMPDIR (%s, %s)",
			rsa, r.tmpdir, fsType(r.tmpdir)),
		toolRepoAddEd25519: fmt.Sprintf("as repo-add, with an %s gpg key (its own GNUPGHOME); at N ≤ %s only", ed, stats.Thousands(repoAddEd25519MaxN)),
		toolRepoAddTmpfs:   fmt.Sprintf("as repo-add (%s gpg key), with `TMPDIR` in %s (%s)", rsa, cfg.tmpfs, fsType(cfg.tmpfs)),
	})
	anchors := slices.DeleteFunc(slices.Clone(cfg.tools), isPackyard)
	for _, p := range cfg.tools {
		if isPackyard(p) {
			d.RatioTable(r.rows, p, anchors)
		}
	}

	var details []report.Detail
	for _, t := range cfg.tools {
		if isPackyard(t) {
			details = append(details, report.ServerDetail(t))
		}
	}
	// The databases are sized for one tool of each kind: the key changes
	// only the signatures beside them, and TMPDIR nothing.
	var sized, sizes []string
	for _, kind := range [][]string{{toolPackyard, toolPackyardEd25519}, {toolRepoAdd, toolRepoAddTmpfs, toolRepoAddEd25519}} {
		if i := slices.IndexFunc(kind, func(t string) bool { return slices.Contains(cfg.tools, t) }); i >= 0 {
			sized = append(sized, kind[i])
			if isPackyard(kind[i]) {
				sizes = append(sizes, kind[i]+": "+mainArch+"/bench.db + .files")
			} else {
				sizes = append(sizes, kind[i]+": R.db.tar.gz + R.files.tar.gz")
			}
		}
	}
	details = append(details, report.Detail{
		Label: "databases after the samples (" + strings.Join(sizes, "; ") + "), packages listed",
		Cell: func(x report.Row) string {
			var s []string
			for _, t := range sized {
				if run := r.run(x, t); run != nil {
					s = append(s, fmt.Sprintf("%s, %s", megabytes(run.dbBytes), stats.Thousands(run.dbEntries)))
				} else {
					s = append(s, "—")
				}
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
					if a, b := x.Results[t], r.rows[0].Results[t]; a != nil && b != nil {
						s = append(s, stats.FmtRatio(stats.Ratio(a.Samples.P50(), b.Samples.P50())))
					} else {
						s = append(s, "—")
					}
				}
				return strings.Join(s, " / ")
			},
		})
	}
	details = append(details, report.ForeignDetail(cfg.tools, "packyard tools: preload and samples, repo-add tools: samples"))
	d.DetailTable(r.rows, details)

	if ts := r.targets(); len(ts) > 0 {
		r.missed = d.Targets("issue 6", ts)
	}
	d.Printf("\nTotal benchmark time: %s.\n", r.finished.Sub(r.started).Round(time.Second))
	return d.String()
}

// targets are issue 6's targets, for each key algorithm that both a
// packyard tool and its repo-add counterpart were measured with: the ratio
// at the smallest N and the flatness of packyard's curve.
func (r *summary) targets() []report.Target {
	var ts []report.Target
	first, last := r.rows[0], r.rows[len(r.rows)-1]
	for _, pair := range [][2]string{{toolPackyard, toolRepoAdd}, {toolPackyardEd25519, toolRepoAddEd25519}} {
		p, a := pair[0], pair[1]
		algo := gnupg.AlgorithmName(keyAlgorithm(p))
		if fp, fa := first.Results[p], first.Results[a]; fp != nil && fa != nil {
			ratio := stats.Ratio(fp.Samples.P50(), fa.Samples.P50())
			ts = append(ts, report.Target{
				Goal: fmt.Sprintf("%s: upload→visible ≤ %.2f× `%s`'s at N = %s (p50, signing included, %s keys both)",
					p, targetRatio, a, stats.Thousands(first.N), algo),
				Measured: fmt.Sprintf("%s vs %s = %s", stats.MS(fp.Samples.P50()), stats.MS(fa.Samples.P50()), stats.FmtRatio(ratio)),
				Met:      ratio <= targetRatio,
			})
		}
		if fp, lp := first.Results[p], last.Results[p]; len(r.rows) > 1 && fp != nil && lp != nil {
			ratio := stats.Ratio(lp.Samples.P50(), fp.Samples.P50())
			ts = append(ts, report.Target{
				Goal: fmt.Sprintf("%s: a nearly flat curve to N = %s, its p50 there ≤ %.1f× its p50 at N = %s (%s key)",
					p, stats.Thousands(last.N), targetFlat, stats.Thousands(first.N), algo),
				Measured: fmt.Sprintf("%s vs %s = %s", stats.MS(lp.Samples.P50()), stats.MS(fp.Samples.P50()), stats.FmtRatio(ratio)),
				Met:      ratio <= targetFlat,
			})
		}
	}
	return ts
}

// skipNote says why repo-add-ed25519 did not run at some N, with the
// figures that show what it would have measured there, or "" if it ran
// wherever it was asked to.
func (r *summary) skipNote() string {
	if !slices.Contains(r.cfg.tools, toolRepoAddEd25519) {
		return ""
	}
	var skipped []string
	var lastSkipped, compared *report.Row
	for i, x := range r.rows {
		switch {
		case x.Results[toolRepoAddEd25519] == nil:
			skipped = append(skipped, stats.Thousands(x.N))
			lastSkipped = &r.rows[i]
		case x.Results[toolRepoAdd] != nil:
			compared = &r.rows[i]
		}
	}
	if len(skipped) == 0 {
		return ""
	}
	var why []string
	if a := lastSkipped.Results[toolRepoAdd]; a != nil {
		why = append(why, fmt.Sprintf("each of its samples would take about as long as repo-add's (p50 %s at N = %s)",
			stats.MS(a.Samples.P50()), stats.Thousands(lastSkipped.N)))
	}
	if compared != nil {
		rsa, ed := compared.Results[toolRepoAdd].Samples.P50(), compared.Results[toolRepoAddEd25519].Samples.P50()
		diff := fmt.Sprintf("%.0f%% less", 100*(1-stats.Ratio(ed, rsa)))
		if ed > rsa {
			diff = fmt.Sprintf("%.0f%% more", 100*(stats.Ratio(ed, rsa)-1))
		}
		why = append(why, fmt.Sprintf("signing is a negligible share of repo-add's time (at N = %s repo-add's p50 is %s with an %s key and %s, %s, with an %s key)",
			stats.Thousands(compared.N), stats.MS(rsa), gnupg.AlgorithmName(gnupg.RSA3072), stats.MS(ed), diff, gnupg.AlgorithmName(gnupg.Ed25519)))
	}
	note := fmt.Sprintf("%s runs at N ≤ %s only, so not at N = %s", toolRepoAddEd25519, stats.Thousands(repoAddEd25519MaxN), strings.Join(skipped, ", "))
	if len(why) > 0 {
		note += ": " + strings.Join(why, ", and ")
	}
	return note + "."
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
