package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

type event struct {
	Seq  int64           `json:"seq"`
	Type string          `json:"type"`
	Repo string          `json:"repo"`
	Data json.RawMessage `json:"data"`
	Time time.Time       `json:"time"`
}

func (e *env) events(since int64) []event {
	e.t.Helper()
	r := e.get(fmt.Sprintf("/api/v1/events?follow=false&since=%d", since)).want(e.t, http.StatusOK, "events")
	return decodeJSON[[]event](e.t, r)
}

func TestEventsList(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	p := e.mustUpload("r", "a.rpm", buildRPM(t, "a", "1", "1", "x"))

	evs := e.events(0)
	// repo.created, the first generation, package.added, the generation
	// that made it visible — in this order, with increasing seq.
	want := []string{"repo.created", "generation.published", "package.added", "generation.published"}
	var got []string
	for i, ev := range evs {
		got = append(got, ev.Type)
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Errorf("event %d has seq %d after %d", i, ev.Seq, evs[i-1].Seq)
		}
		if ev.Repo != "r" {
			t.Errorf("event %+v: repo %q, want r", ev, ev.Repo)
		}
		if ev.Time.IsZero() {
			t.Errorf("event %d has no time", ev.Seq)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
	var added struct {
		ID     int64  `json:"id"`
		Name   string `json:"name"`
		Path   string `json:"path"`
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	}
	if err := json.Unmarshal(evs[2].Data, &added); err != nil {
		t.Fatalf("package.added data %s: %v", evs[2].Data, err)
	}
	if added.ID != p.ID || added.Name != "a" || added.Path != p.Path || added.Digest != p.SHA256 || added.Size != p.Size {
		t.Errorf("package.added data %+v, want the upload %+v", added, p)
	}
	var gen struct {
		Number int64 `json:"number"`
		Seq    int64 `json:"seq"`
	}
	if err := json.Unmarshal(evs[3].Data, &gen); err != nil {
		t.Fatalf("generation.published data %s: %v", evs[3].Data, err)
	}
	if gen.Number != p.Generation || gen.Seq < evs[2].Seq {
		t.Errorf("generation.published %+v: want number %d covering seq %d", gen, p.Generation, evs[2].Seq)
	}

	// since skips what the follower has.
	rest := e.events(evs[1].Seq)
	if len(rest) != 2 || rest[0].Seq != evs[2].Seq {
		t.Errorf("events since %d: %+v", evs[1].Seq, rest)
	}
	if n := len(e.events(evs[3].Seq)); n != 0 {
		t.Errorf("events since the last: %d, want none", n)
	}
	for _, bad := range []string{"since=abc", "since=-1"} {
		e.get("/api/v1/events?follow=false&"+bad).want(t, http.StatusBadRequest, bad).apiErr(t)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id   int64
	typ  string
	data string
}

// sseStream reads server-sent events from a stream.
type sseStream struct {
	sc     *bufio.Scanner
	cancel context.CancelFunc
}

// follow opens the change feed stream; hdr are extra request headers.
func (e *env) follow(query string, hdr map[string]string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	e.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/events"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{}).Do(req) // no client timeout: the context bounds it
	if err != nil {
		e.t.Fatalf("open event stream: %v", err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		e.t.Fatalf("event stream: HTTP %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseStream{sc: bufio.NewScanner(resp.Body), cancel: cancel}
}

// next returns the next event; it fails the test if the stream ends or the
// deadline passes first.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	seen := false
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if seen {
				return ev
			}
		case strings.HasPrefix(line, ":"): // comment (heartbeat)
		case strings.HasPrefix(line, "id: "):
			n, err := strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
			if err != nil {
				t.Fatalf("bad event id line %q", line)
			}
			ev.id, seen = n, true
		case strings.HasPrefix(line, "event: "):
			ev.typ, seen = strings.TrimPrefix(line, "event: "), true
		case strings.HasPrefix(line, "data: "):
			ev.data, seen = strings.TrimPrefix(line, "data: "), true
		default:
			t.Fatalf("unexpected line in event stream: %q", line)
		}
	}
	t.Fatalf("event stream ended before the next event: %v", s.sc.Err())
	return ev
}

func TestEventsStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	before := e.events(0)
	last := before[len(before)-1].Seq

	s := e.follow(fmt.Sprintf("?since=%d", last), nil)
	// The upload happens after the stream is open; its events must arrive.
	p := e.mustUpload("r", "live.rpm", buildRPM(t, "live", "1", "1", "x"))
	prev := last
	for {
		ev := s.next(t)
		if ev.id <= prev {
			t.Fatalf("event id %d after %d (stream opened since %d)", ev.id, prev, last)
		}
		prev = ev.id
		var body event
		if err := json.Unmarshal([]byte(ev.data), &body); err != nil {
			t.Fatalf("event data %q: %v", ev.data, err)
		}
		if body.Seq != ev.id || body.Type != ev.typ {
			t.Errorf("event id %d type %s carries data %+v", ev.id, ev.typ, body)
		}
		if ev.typ == "package.added" {
			if !strings.Contains(string(body.Data), `"path":"`+p.Path+`"`) {
				t.Errorf("package.added %s does not name %s", body.Data, p.Path)
			}
			break
		}
	}
}

func TestEventsResume(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	e.mustUpload("r", "a.rpm", buildRPM(t, "a", "1", "1", "x"))
	all := e.events(0)
	if len(all) < 3 {
		t.Fatalf("events: %+v", all)
	}
	resumeAfter := all[1].Seq
	tests := []struct {
		name  string
		query string
		hdr   map[string]string
	}{
		{"Last-Event-ID", "", map[string]string{"Last-Event-ID": strconv.FormatInt(resumeAfter, 10)}},
		{"since", fmt.Sprintf("?since=%d", resumeAfter), nil},
		// An EventSource reconnects to the URL it was opened with and
		// adds Last-Event-ID: the header is the newer position.
		{"Last-Event-ID over since", "?since=0", map[string]string{"Last-Event-ID": strconv.FormatInt(resumeAfter, 10)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := e.follow(tc.query, tc.hdr)
			for _, want := range all[2:] {
				ev := s.next(t)
				if ev.id != want.Seq || ev.typ != want.Type {
					t.Fatalf("resumed after %d: got event %d %s, want %d %s", resumeAfter, ev.id, ev.typ, want.Seq, want.Type)
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("r")
	p := e.mustUpload("r", "a.rpm", buildRPM(t, "a", "1", "1", "x"))
	e.upload("r", "bad.rpm", []byte("junk"), e.admin, "").want(t, http.StatusBadRequest, "junk upload")
	e.get("/r/"+p.Path).want(t, http.StatusOK, "download")

	r := e.get("/metrics").want(t, http.StatusOK, "metrics")
	m := parseMetrics(string(r.body))
	checks := []struct {
		series string
		want   float64
	}{
		{`packyard_uploads_total{result="created"}`, 1},
		{`packyard_uploads_total{result="invalid"}`, 1},
		{`packyard_upload_visible_seconds_count{repo="r"}`, 1},
		{`packyard_repo_generation{repo="r"}`, float64(p.Generation)},
		{`packyard_http_requests_total{code="201",method="PUT",route="PUT /api/v1/repos/{repo}/packages/{filename}"}`, 1},
		{`packyard_http_requests_total{code="400",method="PUT",route="PUT /api/v1/repos/{repo}/packages/{filename}"}`, 1},
		{`packyard_http_requests_total{code="200",method="GET",route="GET /{repo}/{path...}"}`, 1},
		{`packyard_http_requests_total{code="201",method="POST",route="POST /api/v1/repos"}`, 1},
	}
	for _, c := range checks {
		got, ok := m[c.series]
		if !ok {
			t.Errorf("/metrics lacks %s", c.series)
			continue
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.series, got, c.want)
		}
	}
	if _, ok := m[`packyard_upload_visible_seconds_sum{repo="r"}`]; !ok {
		t.Errorf("/metrics lacks the visible-time histogram sum")
	}
}

// parseMetrics reads the Prometheus text format into series → value, with
// labels sorted as the exposition writes them.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}
