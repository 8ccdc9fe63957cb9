package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/packyard/packyard/bench/internal/report"
	"github.com/packyard/packyard/bench/internal/stats"
)

type summary struct {
	cfg               *config
	started, finished time.Time
	corpusBytes       int64
	corpusFiles       int
	rows              []report.Row
	missed            int
}

// commands says what one timed sample of each tool is.
var commands = map[string]string{
	toolPackyard: "`PUT /api/v1/repos/bench/packages/FILE?distribution=bookworm&component=main` (answers once published and signed)",
	toolReprepro: "`reprepro -b DIR includedeb bookworm FILE`",
	toolAptly:    "`aptly repo add bench FILE` + `aptly publish update -gpg-key=KEY -batch bookworm`",
}

// targets are issue 3's: packyard's p50 at most this share of reprepro's,
// at the smaller and the larger N.
var targets = [2]float64{1.0, 0.3}

func (r *summary) markdown() string {
	var d report.Doc
	cfg := r.cfg

	mode := "full"
	if cfg.quick {
		mode = "quick (smoke run: the targets are stated for N = 2,000 and 20,000 and are applied here to the smaller sizes)"
	}
	d.Printf("Run: %s, %s mode, %d samples per tool and N; corpus of %s .debs (%.1f MB) from `debtest.Corpus(n, %d)`.\n\n",
		r.started.Format("2006-01-02 15:04 MST"), mode, cfg.samples, stats.Thousands(r.corpusFiles), float64(r.corpusBytes)/1e6, cfg.seed)
	d.SampleTable(r.rows, cfg.tools)
	d.Commands(cfg.tools, commands)
	if slices.Contains(cfg.tools, toolPackyard) {
		d.RatioTable(r.rows, toolPackyard, slices.DeleteFunc(slices.Clone(cfg.tools), func(t string) bool { return t == toolPackyard }))
	}

	var details []report.Detail
	if slices.Contains(cfg.tools, toolPackyard) {
		details = append(details, report.ServerDetail(toolPackyard))
	}
	if slices.Contains(cfg.tools, toolAptly) {
		details = append(details, report.Detail{Label: "aptly: `repo add` part of a sample, p50",
			Cell: func(x report.Row) string { return stats.MS(x.Results[toolAptly].Parts.P50()) }})
	}
	details = append(details, report.ForeignDetail(cfg.tools, "the gpg that reprepro starts through gpgme's double fork counts here"))
	d.DetailTable(r.rows, details)

	if slices.Contains(cfg.tools, toolPackyard) && slices.Contains(cfg.tools, toolReprepro) {
		var ts []report.Target
		for i, x := range []report.Row{r.rows[0], r.rows[len(r.rows)-1]} {
			if i == 1 && len(r.rows) == 1 {
				break
			}
			p, a := x.Results[toolPackyard].Samples.P50(), x.Results[toolReprepro].Samples.P50()
			ratio := stats.Ratio(p, a)
			ts = append(ts, report.Target{
				Goal:     fmt.Sprintf("upload→visible ≤ %.1f× `reprepro includedeb` at N = %s (p50, signing included)", targets[i], stats.Thousands(x.N)),
				Measured: fmt.Sprintf("%s vs %s = %s", stats.MS(p), stats.MS(a), stats.FmtRatio(ratio)),
				Met:      ratio <= targets[i],
			})
		}
		r.missed = d.Targets("issue 3", ts)
	}
	d.Printf("\nTotal benchmark time: %s.\n", r.finished.Sub(r.started).Round(time.Second))
	return d.String()
}
