package httpapi

import (
	"net/http"
	"strconv"
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
	uploads     *prometheus.CounterVec
	visible     *prometheus.HistogramVec
	publishes   *prometheus.HistogramVec
	generations *prometheus.GaugeVec
	watchFiles  *prometheus.CounterVec
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
	m.reg.MustRegister(m.requests, m.latency, m.uploads, m.visible, m.publishes, m.generations, m.watchFiles,
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

func (m *Metrics) observe(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}
