package httpapi

import (
	"github.com/packyard/packyard/internal/mirror"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the server's Prometheus collectors in their own registry
// (no global state). It also implements repo.Metrics and watch.Metrics.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	fast        prometheus.Counter
	uploads     *prometheus.CounterVec
	visible     *prometheus.HistogramVec
	publishes   *prometheus.HistogramVec
	generations *prometheus.GaugeVec
	watchFiles  *prometheus.CounterVec
	proxy       proxyMetrics
	mirror      mirrorMetrics
	// handles remembers children of vectors used on every request.
	handles sync.Map
}

// mirrorMetrics are the mirror repositories' collectors.
type mirrorMetrics struct {
	syncs, added, bytes               *prometheus.CounterVec
	duration                          *prometheus.HistogramVec
	packages, dropped, failed, lastOK *prometheus.GaugeVec
}

// proxyMetrics are the proxy repositories' collectors.
type proxyMetrics struct {
	requests, bytes, upstreamErrors, stale *prometheus.CounterVec
}

// NewMetrics creates and registers the collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "packyard_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		fast: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "packyard_http_fast_path_requests_total", Help: "HTTP requests answered by the fast path (also counted in packyard_http_requests_total).",
		}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_uploads_total", Help: "Package uploads by result (created, exists, conflict, invalid, too_large, error).",
		}, []string{"result"}),
		visible: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "packyard_upload_visible_seconds", Help: "Time from upload start until the package is in the current generation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"repo"}),
		publishes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "packyard_publish_duration_seconds", Help: "Time to build and publish one generation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"repo"}),
		generations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "packyard_repo_generation", Help: "Current generation number per repository.",
		}, []string{"repo"}),
		watchFiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_watch_files_total", Help: "Files handled in drop folders by repository and result (imported, identical, rejected, retry).",
		}, []string{"repo", "result"}),
	}
	m.proxy = proxyMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_proxy_requests_total", Help: "Proxy repository requests by result (hit, miss, coalesced, revalidated, stale, not_found, error).",
		}, []string{"repo", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_proxy_bytes_total", Help: "Proxy repository bytes received from upstreams and peers, and served to clients (kind upstream, peer, served).",
		}, []string{"repo", "kind"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_proxy_upstream_errors_total", Help: "Failed requests to a proxy repository's upstreams, by upstream.",
		}, []string{"repo", "upstream"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_proxy_stale_total", Help: "Cached files served stale because no upstream could be reached.",
		}, []string{"repo"}),
	}
	m.mirror = mirrorMetrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_mirror_syncs_total", Help: "Mirror syncs by repository and status (ok, failed).",
		}, []string{"repo", "status"}),
		added: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_mirror_packages_added_total", Help: "Packages mirror syncs added.",
		}, []string{"repo"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "packyard_mirror_downloaded_bytes_total", Help: "Bytes mirror syncs downloaded from upstreams.",
		}, []string{"repo"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "packyard_mirror_sync_duration_seconds", Help: "Duration of mirror syncs.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"repo"}),
		packages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "packyard_mirror_upstream_packages", Help: "Packages the upstream named at the last sync.",
		}, []string{"repo"}),
		dropped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "packyard_mirror_dropped_packages", Help: "Packages of the mirror that the upstream no longer names (kept by union mirrors), at the last sync.",
		}, []string{"repo"}),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "packyard_mirror_failed_packages", Help: "Packages the last sync could not copy.",
		}, []string{"repo"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "packyard_mirror_last_success_timestamp_seconds", Help: "When the last successful sync ended (Unix time).",
		}, []string{"repo"}),
	}
	m.reg.MustRegister(m.mirror.syncs, m.mirror.added, m.mirror.bytes, m.mirror.duration, m.mirror.packages,
		m.mirror.dropped, m.mirror.failed, m.mirror.lastOK)
	m.reg.MustRegister(m.proxy.requests, m.proxy.bytes, m.proxy.upstreamErrors, m.proxy.stale)
	m.reg.MustRegister(m.requests, m.latency, m.fast, m.uploads, m.visible, m.publishes, m.generations, m.watchFiles,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// UploadDone implements repo.Metrics.
func (m *Metrics) UploadDone(result string) { m.uploads.WithLabelValues(result).Inc() }

// Visible implements repo.Metrics.
func (m *Metrics) Visible(repo string, d time.Duration) {
	m.visible.WithLabelValues(repo).Observe(d.Seconds())
}

// Published implements repo.Metrics.
func (m *Metrics) Published(repo string, number int64, d time.Duration) {
	m.publishes.WithLabelValues(repo).Observe(d.Seconds())
	m.generations.WithLabelValues(repo).Set(float64(number))
}

// WatchFile implements watch.Metrics.
func (m *Metrics) WatchFile(repo, result string) { m.watchFiles.WithLabelValues(repo, result).Inc() }

// ProxyRequest implements proxy.Metrics.
func (m *Metrics) ProxyRequest(repo, result string) {
	m.counter(m.proxy.requests, repo, result, "").Inc()
	if result == "stale" {
		m.proxy.stale.WithLabelValues(repo).Inc()
	}
}

// ProxyBytes implements proxy.Metrics.
func (m *Metrics) ProxyBytes(repo, kind string, n int64) {
	m.counter(m.proxy.bytes, repo, kind, "").Add(float64(n))
}

// ProxyUpstreamError implements proxy.Metrics.
func (m *Metrics) ProxyUpstreamError(repo, upstream string) {
	m.proxy.upstreamErrors.WithLabelValues(repo, upstream).Inc()
}

func (m *Metrics) observe(route, method string, code int, d time.Duration) {
	m.counter(m.requests, route, method, codeText(code)).Inc()
	m.observer(m.latency, route, method).Observe(d.Seconds())
}

// codeText is strconv.Itoa for status codes, without an allocation for the
// common ones.
func codeText(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusPartialContent:
		return "206"
	case http.StatusNotModified:
		return "304"
	case http.StatusNotFound:
		return "404"
	}
	return strconv.Itoa(code)
}

// handleKey names one child of a metric vector by its label values (the
// unused ones empty).
type handleKey struct {
	vec     any
	a, b, c string
}

// counter returns the child of vec with the label values a, b (and c,
// when not empty), remembered: the hot paths (every request) skip the
// vector's hashing of label values and its lock.
func (m *Metrics) counter(vec *prometheus.CounterVec, a, b, c string) prometheus.Counter {
	k := handleKey{vec, a, b, c}
	if h, ok := m.handles.Load(k); ok {
		return h.(prometheus.Counter)
	}
	lv := []string{a, b}
	if c != "" {
		lv = append(lv, c)
	}
	h := vec.WithLabelValues(lv...)
	m.handles.Store(k, h)
	return h
}

// observer is counter for histograms (two labels).
func (m *Metrics) observer(vec *prometheus.HistogramVec, a, b string) prometheus.Observer {
	k := handleKey{vec, a, b, ""}
	if h, ok := m.handles.Load(k); ok {
		return h.(prometheus.Observer)
	}
	h := vec.WithLabelValues(a, b)
	m.handles.Store(k, h)
	return h
}

// MirrorSync records the outcome of a mirror sync (mirror.Metrics).
func (m *Metrics) MirrorSync(repo, status string, took time.Duration, st mirror.Stats) {
	m.mirror.syncs.WithLabelValues(repo, status).Inc()
	m.mirror.duration.WithLabelValues(repo).Observe(took.Seconds())
	m.mirror.added.WithLabelValues(repo).Add(float64(st.Added))
	m.mirror.bytes.WithLabelValues(repo).Add(float64(st.DownloadedBytes))
	m.mirror.failed.WithLabelValues(repo).Set(float64(st.Failed))
	if status == "ok" {
		m.mirror.packages.WithLabelValues(repo).Set(float64(st.Packages))
		m.mirror.dropped.WithLabelValues(repo).Set(float64(st.Dropped))
		m.mirror.lastOK.WithLabelValues(repo).SetToCurrentTime()
	}
}
