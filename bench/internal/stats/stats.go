// Package stats summarises benchmark samples and formats durations, sizes
// and ratios for the markdown reports under docs/benchmarks.md.
package stats

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Samples is a set of measured durations, in the order they were taken.
type Samples []time.Duration

// Quantile returns the q-quantile by linear interpolation between the
// closest ranks (numpy's default), or 0 for no samples.
func (s Samples) Quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(Samples(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	pos := q * float64(len(c)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	f := pos - float64(lo)
	return c[lo] + time.Duration(f*float64(c[hi]-c[lo]))
}

// P50 is the median.
func (s Samples) P50() time.Duration { return s.Quantile(0.5) }

// P95 is the 95th percentile.
func (s Samples) P95() time.Duration { return s.Quantile(0.95) }

// Mean is the arithmetic mean, or 0 for no samples.
func (s Samples) Mean() time.Duration {
	if len(s) == 0 {
		return 0
	}
	var t time.Duration
	for _, d := range s {
		t += d
	}
	return t / time.Duration(len(s))
}

// Max is the largest sample.
func (s Samples) Max() time.Duration {
	var m time.Duration
	for _, d := range s {
		m = max(m, d)
	}
	return m
}

// Secs formats a duration in seconds with about three significant digits.
func Secs(d time.Duration) string {
	v := d.Seconds()
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f s", v)
	case v >= 10:
		return fmt.Sprintf("%.1f s", v)
	case v >= 1:
		return fmt.Sprintf("%.2f s", v)
	default:
		return fmt.Sprintf("%.3f s", v)
	}
}

// MS formats a duration in milliseconds with about three significant
// digits.
func MS(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// Ratio is a / b, NaN when b is 0.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// FmtRatio formats a ratio as "0.42×" ("n/a" for NaN).
func FmtRatio(r float64) string {
	switch {
	case math.IsNaN(r):
		return "n/a"
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2f×", r)
	default:
		return fmt.Sprintf("%.4f×", r)
	}
}

// MiB formats a size given in KiB.
func MiB(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

// Thousands formats n with a comma every three digits.
func Thousands(n int) string {
	s := fmt.Sprint(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	out := ""
	for len(s) > 3 {
		out = "," + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	return neg + s + out
}
