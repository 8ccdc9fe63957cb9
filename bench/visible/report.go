package main

import (
	"fmt"
	"strings"
	"time"
)

type row struct {
	N      int
	Anchor *anchorResult
	Py     *pyResult
}

type report struct {
	cfg               *config
	started, finished time.Time
	rows              []row
	failedChecks      int
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func (r *report) markdown() string {
	var b strings.Builder
	cfg := r.cfg
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	mode := "full"
	if cfg.quick {
		mode = "quick (smoke run: targets are stated for N = 2,000 and 20,000 and are applied here to the smaller sizes)"
	}
	bulkMode := "each PUT waits until its package is published (the API's default)"
	if !cfg.bulkWait {
		bulkMode = "PUTs use `?wait=false` and answer once the package is durable, as `packyard push --no-wait` does"
	}
	w("Run: %s, %s mode, %d single-upload samples per N, bulk import with %d concurrent PUTs; %s.\n\n",
		r.started.Format("2006-01-02 15:04 MST"), mode, cfg.samples, cfg.workers, bulkMode)

	// Measurements.
	w("| measurement |")
	for _, x := range r.rows {
		w(" N = %s |", thousands(x.N))
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
	line("createrepo_c full: `createrepo_c DIR`", func(x row) string {
		return fmt.Sprintf("%s (max RSS %s)", secs(x.Anchor.Full), mib(x.Anchor.FullMaxRSSKB))
	})
	line("createrepo_c full: `createrepo_c --no-database DIR`", func(x row) string { return secs(x.Anchor.FullNoDB) })
	line("add 1 package: `createrepo_c --update DIR`, p50 / p95 (samples)", func(x row) string {
		return fmt.Sprintf("%s / %s (%d)", secs(x.Anchor.Update.p50()), secs(x.Anchor.Update.p95()), len(x.Anchor.Update))
	})
	line("add 1 package: `createrepo_c --update --no-database DIR`, p50 / p95 (samples)", func(x row) string {
		return fmt.Sprintf("%s / %s (%d)", secs(x.Anchor.UpdateNoDB.p50()), secs(x.Anchor.UpdateNoDB.p95()), len(x.Anchor.UpdateNoDB))
	})
	line(fmt.Sprintf("packyard bulk import: first PUT → repomd.xml names a primary listing all N (%d concurrent PUTs, wait=%v)", cfg.workers, cfg.bulkWait), func(x row) string {
		return fmt.Sprintf("%s (%.0f packages/s; PUTs done at %s)", secs(x.Py.Bulk), float64(x.N)/x.Py.Bulk.Seconds(), secs(x.Py.BulkPUTs))
	})
	line(fmt.Sprintf("… same with waiting PUTs (wait=%v; separate server)", !cfg.bulkWait), func(x row) string {
		b := x.Py.BulkWait
		if b == nil {
			return fmt.Sprintf("not run (N > %s: -bulk-wait-upto)", thousands(cfg.bulkWaitUpTo))
		}
		return fmt.Sprintf("%s (%.0f packages/s; server CPU %s; %d generations)", secs(b.total), float64(x.N)/b.total.Seconds(), secs(b.serverCPU), b.gen)
	})
	line("packyard server CPU time during the bulk import (user+sys)", func(x row) string {
		return fmt.Sprintf("%s (%.2f ms/package)", secs(x.Py.BulkServerCPU), float64(x.Py.BulkServerCPU)/float64(time.Millisecond)/float64(x.N))
	})
	line("packyard upload→visible (PUT start → fresh repomd.xml GET done), p50 / p95 / max (samples)", func(x row) string {
		return fmt.Sprintf("%s / %s / %s (%d)", ms(x.Py.Visible.p50()), ms(x.Py.Visible.p95()), ms(x.Py.Visible.max()), len(x.Py.Visible))
	})
	line("… of which the PUT (answers once published), p50 / p95", func(x row) string {
		return fmt.Sprintf("%s / %s", ms(x.Py.PUTOnly.p50()), ms(x.Py.PUTOnly.p95()))
	})
	line("upload→visible ÷ `createrepo_c --update`, p50 (p95)", func(x row) string {
		return fmt.Sprintf("%s (%s)", fmtRatio(ratio(x.Py.Visible.p50(), x.Anchor.Update.p50())), fmtRatio(ratio(x.Py.Visible.p95(), x.Anchor.Update.p95())))
	})
	line("upload→visible ÷ `createrepo_c --update --no-database`, p50 (p95)", func(x row) string {
		return fmt.Sprintf("%s (%s)", fmtRatio(ratio(x.Py.Visible.p50(), x.Anchor.UpdateNoDB.p50())), fmtRatio(ratio(x.Py.Visible.p95(), x.Anchor.UpdateNoDB.p95())))
	})
	line("bulk import ÷ `createrepo_c DIR` full", func(x row) string { return fmtRatio(ratio(x.Py.Bulk, x.Anchor.Full)) })
	line("server VmRSS / VmHWM after the bulk import", func(x row) string {
		return fmt.Sprintf("%s / %s", mib(x.Py.MemAfterBulk.RSS), mib(x.Py.MemAfterBulk.HWM))
	})
	line("server VmRSS / VmHWM after the single uploads", func(x row) string {
		return fmt.Sprintf("%s / %s", mib(x.Py.MemAfterAll.RSS), mib(x.Py.MemAfterAll.HWM))
	})
	line("CPU used by other processes on the machine during the createrepo_c / packyard phases (share of all cores)", func(x row) string {
		return fmt.Sprintf("%.0f%% / %.0f%%", 100*x.Anchor.Foreign.share(), 100*x.Py.Foreign.share())
	})
	last := r.rows[len(r.rows)-1]
	if bg := last.Py.Big; bg != nil {
		line("large upload into an empty second repository on the same server: time; VmRSS baseline → peak (sampled every 50 ms)", func(x row) string {
			if x.Py.Big == nil {
				return "—"
			}
			b := x.Py.Big
			return fmt.Sprintf("%.0f MiB in %s (%.0f MiB/s); %s → %s (+%s); VmHWM %s → %s", float64(b.Size)/(1<<20), secs(b.Upload),
				float64(b.Size)/(1<<20)/b.Upload.Seconds(), mib(b.Baseline), mib(b.Top), mib(b.Top-b.Baseline), mib(b.HWMBefore), mib(b.HWMAfter))
		})
	}
	if len(last.Anchor.Update) < last.Anchor.UpdateSamplesWanted {
		w("\ncreaterepo_c --update at N = %s: %d samples (of %d packyard samples).\n", thousands(last.N), len(last.Anchor.Update), len(last.Py.Visible))
	}

	// Targets.
	w("\n| target | measured | |\n| --- | --- | --- |\n")
	check := func(name, measured string, ok bool) {
		if !ok {
			r.failedChecks++
		}
		w("| %s | %s | %s |\n", name, measured, verdict(ok))
	}
	small := r.rows[0]
	rv := func(x row) float64 { return ratio(x.Py.Visible.p50(), x.Anchor.Update.p50()) }
	check(fmt.Sprintf("upload→visible ≤ 0.1× `createrepo_c --update` at N = %s (p50)", thousands(small.N)),
		fmt.Sprintf("%s vs %s = %s", ms(small.Py.Visible.p50()), secs(small.Anchor.Update.p50()), fmtRatio(rv(small))), rv(small) <= 0.1)
	if len(r.rows) > 1 {
		check(fmt.Sprintf("upload→visible ≤ 0.02× `createrepo_c --update` at N = %s (p50)", thousands(last.N)),
			fmt.Sprintf("%s vs %s = %s", ms(last.Py.Visible.p50()), secs(last.Anchor.Update.p50()), fmtRatio(rv(last))), rv(last) <= 0.02)
		g := ratio(last.Py.Visible.p50(), small.Py.Visible.p50())
		g95 := ratio(last.Py.Visible.p95(), small.Py.Visible.p95())
		check(fmt.Sprintf("packyard upload→visible at N = %s ≤ 2× at N = %s (p50)", thousands(last.N), thousands(small.N)),
			fmt.Sprintf("%s vs %s = %s (p95: %s)", ms(last.Py.Visible.p50()), ms(small.Py.Visible.p50()), fmtRatio(g), fmtRatio(g95)), g <= 2)
	}
	bi := ratio(small.Py.Bulk, small.Anchor.Full)
	check(fmt.Sprintf("bulk import of %s (wait=%v) ≤ 1.5× `createrepo_c` full", thousands(small.N), cfg.bulkWait),
		fmt.Sprintf("%s vs %s = %s", secs(small.Py.Bulk), secs(small.Anchor.Full), fmtRatio(bi)), bi <= 1.5)
	check(fmt.Sprintf("server RSS with %s packages ≤ 150 MiB (VmRSS after the bulk import)", thousands(last.N)),
		fmt.Sprintf("%s (VmHWM %s)", mib(last.Py.MemAfterBulk.RSS), mib(last.Py.MemAfterBulk.HWM)), last.Py.MemAfterBulk.RSS <= 150*1024)
	if bg := last.Py.Big; bg != nil {
		check(fmt.Sprintf("uploading one %.0f MiB RPM raises RSS < 64 MiB (peak − baseline)", float64(bg.Size)/(1<<20)),
			fmt.Sprintf("+%s", mib(bg.Top-bg.Baseline)), bg.Top-bg.Baseline < 64*1024)
	}
	w("\nTotal benchmark time: %s.\n", r.finished.Sub(r.started).Round(time.Second))
	return b.String()
}
