package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packyard/packyard/internal/bytecache"
)

// The read cache (Options.ReadCacheSize) keeps the bytes of recently
// served small files, so that the index files every client fetches are
// answered from memory (internal/bytecache): instead of one store request
// each with a remote store (S3); instead of an open and a sendfile, and by
// the fast path (ServeFast), with a local one, which keeps only
// pointer-sized files.

// registerReadCache adds the cache's collectors to m.
func registerReadCache(c *bytecache.Cache, m *Metrics) {
	if c == nil || m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "packyard_read_cache_hits_total", Help: "Files served from the in-memory read cache.",
		}, func() float64 { return float64(c.Hits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "packyard_read_cache_misses_total", Help: "Cacheable files read from the blob store because the read cache did not hold them.",
		}, func() float64 { return float64(c.Misses.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "packyard_read_cache_bytes", Help: "Bytes held by the in-memory read cache.",
		}, func() float64 { b, _ := c.Size(); return float64(b) }),
	)
}
