package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// eventJSON is one change-feed event as sent to followers.
type eventJSON struct {
	Seq  int64           `json:"seq"`
	Type string          `json:"type"`
	Repo string          `json:"repo,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	Time time.Time       `json:"time"`
}

// events streams the change feed as server-sent events from ?since=N, or
// from the Last-Event-ID header on reconnect: an EventSource reconnects to
// the URL it was opened with, so the header, when sent, is the newer
// position and wins over ?since. With ?follow=false it returns the pending
// events as a JSON array instead, for clients behind buffering proxies.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	since := int64(0)
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	if v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, fmt.Errorf("%w: since=%q is not a sequence number", errBadRequest, v))
			return
		}
		since = n
	}
	ctx := r.Context()
	if r.URL.Query().Get("follow") == "false" {
		evs, err := s.svc.Meta().Events(ctx, since, 1000)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := make([]eventJSON, 0, len(evs))
		for _, e := range evs {
			out = append(out, eventJSON{Seq: e.Seq, Type: e.Type, Repo: e.Repo, Data: json.RawMessage(e.Data), Time: e.Time})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for ctx.Err() == nil {
		evs, err := s.svc.Meta().Events(ctx, since, 500)
		if err != nil {
			return
		}
		for _, e := range evs {
			b, _ := json.Marshal(eventJSON{Seq: e.Seq, Type: e.Type, Repo: e.Repo, Data: json.RawMessage(e.Data), Time: e.Time})
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, b); err != nil {
				return
			}
			since = e.Seq
		}
		if len(evs) > 0 {
			_ = rc.Flush()
			continue
		}
		select {
		case <-heartbeat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		default:
		}
		s.svc.WaitEvents(ctx, since, 5*time.Second)
	}
}
