package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/stats"
)

type row struct {
	N       int
	Results map[string]*toolResult
}

type report struct {
	cfg               *config
	started, finished time.Time
	corpusBytes       int64
	corpusFiles       int
	rows              []row
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

func (r *report) markdown() string {
	var b strings.Builder
	cfg := r.cfg
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	mode := "full"
	if cfg.quick {
		mode = "quick (smoke run: the targets are stated for N = 2,000 and 20,000 and are applied here to the smaller sizes)"
	}
	w("Run: %s, %s mode, %d samples per tool and N; corpus of %s .debs (%.1f MB) from `debtest.Corpus(n, %d)`.\n\n",
		r.started.Format("2006-01-02 15:04 MST"), mode, cfg.samples, stats.Thousands(r.corpusFiles), float64(r.corpusBytes)/1e6, cfg.seed)

	w("| N | tool | upload→visible p50 | p95 | mean | samples | preload of the N packages (once, untimed in the samples) |\n")
	w("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.rows {
		for _, t := range cfg.tools {
			res := x.Results[t]
			w("| %s | %s | %s | %s | %s | %d | %s (%s) |\n", stats.Thousands(x.N), t,
				stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples),
				stats.Secs(res.Preload), res.PreloadNote)
		}
	}
	w("\nOne sample, timed from its start until it returns:\n\n")
	for _, t := range cfg.tools {
		w("- %s: %s\n", t, commands[t])
	}

	py := func(x row) *toolResult { return x.Results[toolPackyard] }
	if slices.Contains(cfg.tools, toolPackyard) && len(cfg.tools) > 1 {
		w("\n| N |")
		for _, t := range cfg.tools[1:] {
			w(" packyard ÷ %s: p50 (p95, mean) |", t)
		}
		w("\n| --- |")
		for range cfg.tools[1:] {
			w(" --- |")
		}
		w("\n")
		for _, x := range r.rows {
			w("| %s |", stats.Thousands(x.N))
			for _, t := range cfg.tools[1:] {
				a, p := x.Results[t], py(x)
				w(" %s (%s, %s) |", stats.FmtRatio(stats.Ratio(p.Samples.P50(), a.Samples.P50())),
					stats.FmtRatio(stats.Ratio(p.Samples.P95(), a.Samples.P95())),
					stats.FmtRatio(stats.Ratio(p.Samples.Mean(), a.Samples.Mean())))
			}
			w("\n")
		}
	}

	w("\n| detail |")
	for _, x := range r.rows {
		w(" N = %s |", stats.Thousands(x.N))
	}
	w("\n| --- |")
	for range r.rows {
		w(" --- |")
	}
	w("\n")
	line := func(label string, f func(x row) string) {
		w("| %s |", label)
		for _, x := range r.rows {
			w(" %s |", f(x))
		}
		w("\n")
	}
	if slices.Contains(cfg.tools, toolPackyard) {
		line("packyard server CPU per upload (user+sys) / server VmRSS after the samples", func(x row) string {
			return fmt.Sprintf("%s / %s", stats.MS(py(x).CPUPerSample), stats.MiB(py(x).RSS))
		})
	}
	if slices.Contains(cfg.tools, toolAptly) {
		line("aptly: `repo add` part of a sample, p50", func(x row) string { return stats.MS(x.Results[toolAptly].Parts.P50()) })
	}
	line(fmt.Sprintf("CPU used by other processes during each tool's phase (%s; share of all cores; the gpg that reprepro starts through gpgme's double fork counts here)", strings.Join(cfg.tools, " / ")), func(x row) string {
		var s []string
		for _, t := range cfg.tools {
			s = append(s, fmt.Sprintf("%.0f%%", 100*x.Results[t].Foreign.Share()))
		}
		return strings.Join(s, " / ")
	})

	if slices.Contains(cfg.tools, toolPackyard) && slices.Contains(cfg.tools, toolReprepro) {
		w("\n| target (issue 3) | measured | |\n| --- | --- | --- |\n")
		for i, x := range []row{r.rows[0], r.rows[len(r.rows)-1]} {
			if i == 1 && len(r.rows) == 1 {
				break
			}
			p, a := py(x).Samples.P50(), x.Results[toolReprepro].Samples.P50()
			ratio := stats.Ratio(p, a)
			ok := ratio <= targets[i]
			verdict := "**met**"
			if !ok {
				verdict = "**missed**"
				r.missed++
			}
			w("| upload→visible ≤ %.1f× `reprepro includedeb` at N = %s (p50, signing included) | %s vs %s = %s | %s |\n",
				targets[i], stats.Thousands(x.N), stats.MS(p), stats.MS(a), stats.FmtRatio(ratio), verdict)
		}
	}
	w("\nTotal benchmark time: %s.\n", r.finished.Sub(r.started).Round(time.Second))
	return b.String()
}
