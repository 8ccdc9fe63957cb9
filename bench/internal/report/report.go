// Package report writes the markdown tables that the upload-to-visible
// benchmarks put into docs/benchmarks.md: each tool's samples at each
// repository size N, packyard's ratio to the other tools, details per N,
// and the issue's targets with a verdict.
package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/stats"
)

// Result is one tool's figures at one N.
type Result struct {
	Tool string
	// Preload is the time to bring the repository to N packages, once,
	// before the samples; PreloadNote says how it was done.
	Preload     time.Duration
	PreloadNote string
	// Samples are the timed single additions, each ending with signed,
	// visible indexes.
	Samples stats.Samples
	// Parts is, for a tool whose sample is two commands, the first
	// command's part of each sample.
	Parts stats.Samples
	// CPUPerSample and RSS (KiB) are a server's, for a tool that is one.
	CPUPerSample time.Duration
	RSS          int64
	// Foreign is the CPU that other processes used during the tool's
	// phase (its samples, and for some tools its preload).
	Foreign *proc.Foreign
}

// Row is every tool's result at one N. A tool that does not run at that
// N has no result: the tables leave it out or show "—".
type Row struct {
	N       int
	Results map[string]*Result
}

// Doc is a markdown document being written.
type Doc struct {
	b strings.Builder
}

// Printf appends formatted text.
func (d *Doc) Printf(format string, args ...any) { fmt.Fprintf(&d.b, format, args...) }

// String returns the document.
func (d *Doc) String() string { return d.b.String() }

// SampleTable writes one line per N and tool that ran there: p50, p95
// and mean of the samples, their number and the preload.
func (d *Doc) SampleTable(rows []Row, tools []string) {
	d.Printf("| N | tool | upload→visible p50 | p95 | mean | samples | preload of the N packages (once, untimed in the samples) |\n")
	d.Printf("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range rows {
		for _, t := range tools {
			res := x.Results[t]
			if res == nil {
				continue
			}
			d.Printf("| %s | %s | %s | %s | %s | %d | %s (%s) |\n", stats.Thousands(x.N), t,
				stats.MS(res.Samples.P50()), stats.MS(res.Samples.P95()), stats.MS(res.Samples.Mean()), len(res.Samples),
				stats.Secs(res.Preload), res.PreloadNote)
		}
	}
}

// Commands lists what one timed sample of each tool is.
func (d *Doc) Commands(tools []string, commands map[string]string) {
	d.Printf("\nOne sample, timed from its start until it returns:\n\n")
	for _, t := range tools {
		d.Printf("- %s: %s\n", t, commands[t])
	}
}

// RatioTable writes, per N, base's p50 (p95, mean) divided by each other
// tool's ("—" where either did not run).
func (d *Doc) RatioTable(rows []Row, base string, others []string) {
	if len(others) == 0 {
		return
	}
	d.Printf("\n| N |")
	for _, t := range others {
		d.Printf(" %s ÷ %s: p50 (p95, mean) |", base, t)
	}
	d.Printf("\n| --- |")
	for range others {
		d.Printf(" --- |")
	}
	d.Printf("\n")
	for _, x := range rows {
		d.Printf("| %s |", stats.Thousands(x.N))
		p := x.Results[base]
		for _, t := range others {
			a := x.Results[t]
			if p == nil || a == nil {
				d.Printf(" — |")
				continue
			}
			d.Printf(" %s (%s, %s) |", stats.FmtRatio(stats.Ratio(p.Samples.P50(), a.Samples.P50())),
				stats.FmtRatio(stats.Ratio(p.Samples.P95(), a.Samples.P95())),
				stats.FmtRatio(stats.Ratio(p.Samples.Mean(), a.Samples.Mean())))
		}
		d.Printf("\n")
	}
}

// Detail is one line of the detail table: a label and a cell per N.
type Detail struct {
	Label string
	Cell  func(x Row) string
}

// DetailTable writes details with one column per N.
func (d *Doc) DetailTable(rows []Row, details []Detail) {
	d.Printf("\n| detail |")
	for _, x := range rows {
		d.Printf(" N = %s |", stats.Thousands(x.N))
	}
	d.Printf("\n| --- |")
	for range rows {
		d.Printf(" --- |")
	}
	d.Printf("\n")
	for _, l := range details {
		d.Printf("| %s |", l.Label)
		for _, x := range rows {
			d.Printf(" %s |", l.Cell(x))
		}
		d.Printf("\n")
	}
}

// ServerDetail is the detail line of a server's CPU per sample and its
// memory after the samples.
func ServerDetail(tool string) Detail {
	return Detail{
		Label: tool + " server CPU per upload (user+sys) / server VmRSS after the samples",
		Cell: func(x Row) string {
			r := x.Results[tool]
			return fmt.Sprintf("%s / %s", stats.MS(r.CPUPerSample), stats.MiB(r.RSS))
		},
	}
}

// ForeignDetail is the detail line of the CPU other processes used
// during each tool's phase ("—" where it did not run); note says what
// else counts as other.
func ForeignDetail(tools []string, note string) Detail {
	label := fmt.Sprintf("CPU used by other processes during each tool's phase (%s; share of all cores", strings.Join(tools, " / "))
	if note != "" {
		label += "; " + note
	}
	return Detail{
		Label: label + ")",
		Cell: func(x Row) string {
			var s []string
			for _, t := range tools {
				if r := x.Results[t]; r != nil {
					s = append(s, fmt.Sprintf("%.0f%%", 100*r.Foreign.Share()))
				} else {
					s = append(s, "—")
				}
			}
			return strings.Join(s, " / ")
		},
	}
}

// Target is one of an issue's targets and what was measured against it.
type Target struct {
	Goal, Measured string
	Met            bool
}

// Targets writes the targets with a verdict each and returns how many
// were missed; issue names the issue ("issue 3").
func (d *Doc) Targets(issue string, targets []Target) (missed int) {
	d.Printf("\n| target (%s) | measured | |\n| --- | --- | --- |\n", issue)
	for _, t := range targets {
		verdict := "**met**"
		if !t.Met {
			verdict = "**missed**"
			missed++
		}
		d.Printf("| %s | %s | %s |\n", t.Goal, t.Measured, verdict)
	}
	return missed
}
