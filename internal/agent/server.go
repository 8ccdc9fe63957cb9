package agent

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the agent's Prometheus collectors, in their own registry.
type metrics struct {
	reg            *prometheus.Registry
	generation     *prometheus.GaugeVec
	lastSeq        prometheus.Gauge
	lastSync       prometheus.Gauge
	feedConnected  prometheus.Gauge
	blobRequests   prometheus.Counter
	partsReused    prometheus.Counter
	bytes          prometheus.Counter
	verifyFailures prometheus.Counter
	syncErrors     prometheus.Counter
	generations    prometheus.Counter
	fullSyncs      prometheus.Counter
	repaired       prometheus.Counter
	deleted        prometheus.Counter
	syncSeconds    prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		generation: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "packyard_agent_generation", Help: "Generation the edge serves, per repository.",
		}, []string{"repo"}),
		lastSeq:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "packyard_agent_last_seq", Help: "Change-feed sequence number the edge has applied."}),
		lastSync:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "packyard_agent_last_sync_timestamp_seconds", Help: "When the edge last applied a generation (Unix time)."}),
		feedConnected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "packyard_agent_feed_connected", Help: "1 while the change-feed stream is connected."}),
		blobRequests:  prometheus.NewCounter(prometheus.CounterOpts{Name: "packyard_agent_blob_requests_total", Help: "Blobs requested from the origin."}),
		partsReused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "packyard_agent_parts_reused_total", Help: "Parts of multi-part index files taken from the previous file on disk instead of downloaded.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "packyard_agent_downloaded_bytes_total", Help: "Bytes downloaded from the origin."}),
		verifyFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "packyard_agent_verify_failures_total", Help: "Downloads refused because their bytes did not match their digest.",
		}),
		syncErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "packyard_agent_sync_errors_total", Help: "Failed syncs (the previous generation stayed served)."}),
		generations: prometheus.NewCounter(prometheus.CounterOpts{Name: "packyard_agent_generations_applied_total", Help: "Generations switched to."}),
		fullSyncs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "packyard_agent_full_syncs_total", Help: "Full syncs run."}),
		repaired:    prometheus.NewCounter(prometheus.CounterOpts{Name: "packyard_agent_files_repaired_total", Help: "Files found missing or different on disk and replaced."}),
		deleted:     prometheus.NewCounter(prometheus.CounterOpts{Name: "packyard_agent_files_deleted_total", Help: "Unmanaged and expired files deleted."}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "packyard_agent_sync_duration_seconds", Help: "Time to list and apply one generation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	m.reg.MustRegister(m.generation, m.lastSeq, m.lastSync, m.feedConnected, m.blobRequests, m.partsReused, m.bytes, m.verifyFailures,
		m.syncErrors, m.generations, m.fullSyncs, m.repaired, m.deleted, m.syncSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Status is what /healthz answers.
type Status struct {
	Status    string           `json:"status"` // ok, degraded (last sync failed), empty (nothing served yet)
	Name      string           `json:"name"`
	Version   string           `json:"version"`
	Feed      string           `json:"feed"`
	Repos     map[string]int64 `json:"repos"`
	LastSync  *time.Time       `json:"last_sync,omitempty"`
	LastError string           `json:"last_error,omitempty"`
}

// Status reports what the agent serves and whether its last sync worked.
func (a *Agent) Status() Status {
	hb := a.heartbeatBody()
	a.mu.Lock()
	st := Status{Status: "ok", Name: a.cfg.Name, Version: a.version, Feed: a.feedMode, Repos: hb.Repos, LastSync: hb.LastSync, LastError: hb.LastError}
	served := len(a.served)
	a.mu.Unlock()
	switch {
	case served == 0:
		st.Status = "empty"
	case st.LastError != "":
		st.Status = "degraded"
	}
	return st
}

// handler serves /healthz, /metrics, POST /api/v1/sync and the tree.
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		st := a.Status()
		code := http.StatusOK
		if st.Status == "empty" {
			// Nothing to serve yet: keep a load balancer away.
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, st)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /api/v1/sync", func(w http.ResponseWriter, r *http.Request) {
		if code, msg := a.authorizeSync(r); code != 0 {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="packyard-agent"`)
			}
			writeJSON(w, code, map[string]string{"error": msg})
			return
		}
		res, err := a.FullSync(r.Context())
		code := http.StatusOK
		if err != nil {
			code = http.StatusBadGateway
		}
		writeJSON(w, code, res)
	})
	files := http.FileServer(http.Dir(a.root))
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		base := path.Base(r.URL.Path)
		if strings.HasPrefix(base, tmpPrefix) {
			http.NotFound(w, r)
			return
		}
		if pointerRank(r.URL.Path) > 1 || strings.HasSuffix(base, ".key") {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		files.ServeHTTP(w, r)
	})
	return mux
}

// authorizeSync checks that a request to run a full sync carries the
// sync_token; it returns the status and message of a refusal, or 0. A full
// sync is costly for the edge and the origin: nobody who can merely reach
// the agent's server (which may serve the tree to the world) may start one.
func (a *Agent) authorizeSync(r *http.Request) (int, string) {
	if a.cfg.SyncToken == "" {
		return http.StatusForbidden, "POST /api/v1/sync is turned off: set sync_token in the agent's configuration " +
			"(or env PACKYARD_AGENT_SYNC_TOKEN) and send it as \"Authorization: Bearer TOKEN\""
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(a.cfg.SyncToken)) != 1 {
		return http.StatusUnauthorized, "send the agent's sync_token as \"Authorization: Bearer TOKEN\""
	}
	return 0, ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }
