package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// samples is a set of durations.
type samples []time.Duration

// quantile returns the q-quantile by linear interpolation between the
// closest ranks (numpy's default).
func (s samples) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(samples(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	pos := q * float64(len(c)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	f := pos - float64(lo)
	return c[lo] + time.Duration(f*float64(c[hi]-c[lo]))
}

func (s samples) p50() time.Duration { return s.quantile(0.5) }
func (s samples) p95() time.Duration { return s.quantile(0.95) }

func (s samples) max() time.Duration {
	var m time.Duration
	for _, d := range s {
		m = max(m, d)
	}
	return m
}

// secs formats a duration in seconds with three significant decimals.
func secs(d time.Duration) string {
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

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
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

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func fmtRatio(r float64) string {
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

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

// thousands formats n with a comma every three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	out := ""
	for len(s) > 3 {
		out = "," + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	return s + out
}
