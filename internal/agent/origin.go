package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// origin talks to the origin server's HTTP API.
type origin struct {
	base  string // without trailing slash
	token string
	http  *http.Client
	// stream has no overall timeout: the feed is one long response.
	stream *http.Client
}

func newOrigin(base, token, proxy string) (*origin, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: %w", proxy, err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &origin{
		base:   strings.TrimRight(base, "/"),
		token:  token,
		http:   &http.Client{Transport: tr, Timeout: 10 * time.Minute},
		stream: &http.Client{Transport: tr},
	}, nil
}

// httpError is an unexpected answer of the origin.
type httpError struct {
	Method, URL string
	Status      int
	Msg         string
}

func (e *httpError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Msg != "" {
		msg += ": " + e.Msg
	}
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (the origin does not accept the edge's token: it is wrong or was revoked; create one with `packyard token create NAME --scope edge`)"
	case http.StatusForbidden:
		msg += " (the edge's token lacks a scope: it needs scope edge on all repositories, and name must be the token's name)"
	}
	return msg
}

// authError reports whether err is the origin refusing the credential.
func authError(err error) bool {
	var he *httpError
	return errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden)
}

// permanent reports whether retrying the same request cannot help soon.
func permanent(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.Status >= 400 && he.Status < 500 && he.Status != http.StatusTooManyRequests
}

func (o *origin) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, o.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	req.Header.Set("User-Agent", "packyard-agent")
	return req, nil
}

// do sends a request and returns the response if it is 2xx.
func (o *origin) do(c *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var ae struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
		msg = ae.Error
	}
	return nil, &httpError{Method: req.Method, URL: req.URL.Redacted(), Status: resp.StatusCode, Msg: msg}
}

// getJSON fetches path into out, reading at most limit bytes.
func (o *origin) getJSON(ctx context.Context, path string, limit int64, out any) error {
	req, err := o.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	resp, err := o.do(o.http, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("GET %s: answer larger than %d bytes", path, limit)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: not the expected JSON: %w", path, err)
	}
	return nil
}

// originRepo is a repository as GET /api/v1/repos lists it.
type originRepo struct {
	Name              string `json:"name"`
	Format            string `json:"format"`
	Kind              string `json:"kind"`
	CurrentGeneration int64  `json:"current_generation"`
}

func (o *origin) repos(ctx context.Context) ([]originRepo, error) {
	var out []originRepo
	err := o.getJSON(ctx, "/api/v1/repos", 64<<20, &out)
	return out, err
}

// genFile is one file of a generation (the origin's genFileJSON).
type genFile struct {
	Path        string   `json:"path"`
	Digest      string   `json:"digest"`
	Size        int64    `json:"size"`
	ContentType string   `json:"content_type"`
	Parts       []string `json:"parts"`
	Data        []byte   `json:"data"`
	Pointer     bool     `json:"pointer"`
}

// genList is a generation's file list.
type genList struct {
	Repo       string    `json:"repo"`
	Format     string    `json:"format"`
	Generation int64     `json:"generation"`
	Seq        int64     `json:"seq"`
	FeedSeq    int64     `json:"feed_seq"`
	Files      []genFile `json:"files"`
	// Since is set when Files holds only what changed since that
	// generation; Removed are the paths it served that this one does not.
	Since   int64    `json:"since"`
	Removed []string `json:"removed"`
}

// maxListSize bounds a generation's file list (about 200 bytes a file).
const maxListSize = 1 << 30

// generation returns the file list of a repository's current generation,
// or, when since > 0, its difference from generation since (gl.Since is
// then set; an origin that no longer has that generation answers 404, and
// the whole list is asked for instead).
func (o *origin) generation(ctx context.Context, repoName string, since int64) (*genList, error) {
	p := "/api/v1/repos/" + url.PathEscape(repoName) + "/generations/current/files"
	var gl genList
	if since > 0 {
		err := o.getJSON(ctx, p+"?since="+strconv.FormatInt(since, 10), maxListSize, &gl)
		var he *httpError
		if errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusBadRequest) {
			gl, err = genList{}, o.getJSON(ctx, p, maxListSize, &gl)
		}
		if err != nil {
			return nil, err
		}
	} else if err := o.getJSON(ctx, p, maxListSize, &gl); err != nil {
		return nil, err
	}
	if gl.Repo != repoName || gl.Generation <= 0 || (gl.Since != 0 && gl.Since != since) {
		return nil, fmt.Errorf("origin's file list of %s names repository %q generation %d (since %d)", repoName, gl.Repo, gl.Generation, gl.Since)
	}
	return &gl, nil
}

// blob opens the blob with that digest.
func (o *origin) blob(ctx context.Context, digest string) (io.ReadCloser, error) {
	req, err := o.request(ctx, http.MethodGet, "/api/v1/blobs/"+digest, nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.do(o.http, req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// heartbeat is what the agent reports.
type heartbeat struct {
	Version   string           `json:"version"`
	Repos     map[string]int64 `json:"repos"`
	LastSync  *time.Time       `json:"last_sync,omitempty"`
	LastError string           `json:"last_error"`
}

func (o *origin) heartbeat(ctx context.Context, name string, hb heartbeat) error {
	b, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	req, err := o.request(ctx, http.MethodPost, "/api/v1/edges/"+url.PathEscape(name)+"/heartbeat", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.do(o.http, req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.Body.Close()
}

// event is one change-feed event.
type event struct {
	Seq  int64           `json:"seq"`
	Type string          `json:"type"`
	Repo string          `json:"repo"`
	Data json.RawMessage `json:"data"`
}

// poll returns the events after since (at most a page of them).
func (o *origin) poll(ctx context.Context, since int64) ([]event, error) {
	var evs []event
	err := o.getJSON(ctx, "/api/v1/events?follow=false&since="+strconv.FormatInt(since, 10), 64<<20, &evs)
	return evs, err
}

// maxEventLine bounds one line of the event stream.
const maxEventLine = 1 << 20

// errStreamIdle means the stream sent nothing for the idle timeout.
var errStreamIdle = errors.New("the event stream sent nothing, not even a heartbeat: a proxy may be buffering it")

// streamEvents follows the server-sent event stream from since and calls fn
// for each event until ctx ends, the stream breaks, or nothing arrives
// for idle; connected is called once the stream is open. got reports
// whether any event arrived.
func (o *origin) streamEvents(ctx context.Context, since int64, idle time.Duration, connected func(), fn func(event)) (got bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := o.request(ctx, http.MethodGet, "/api/v1/events?since="+strconv.FormatInt(since, 10), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	watchdog := time.AfterFunc(idle, func() { cancel(errStreamIdle) })
	defer watchdog.Stop()
	resp, err := o.do(o.stream, req)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, errStreamIdle) {
			return false, c
		}
		return false, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, fmt.Errorf("GET /api/v1/events: Content-Type %q, want text/event-stream", ct)
	}
	connected()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var data []byte
	for sc.Scan() {
		watchdog.Reset(idle)
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 {
				var ev event
				if err := json.Unmarshal(data, &ev); err != nil {
					return got, fmt.Errorf("event stream: bad event %q: %w", truncate(data, 200), err)
				}
				got = true
				fn(ev)
			}
			data = data[:0]
		case line[0] == ':': // comment: the origin's heartbeat
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			if string(field) == "data" {
				if len(data) > 0 {
					data = append(data, '\n')
				}
				data = append(data, value...)
				if len(data) > maxEventLine {
					return got, errors.New("event stream: event larger than 1 MiB")
				}
			}
		}
	}
	err = sc.Err()
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		err = c
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return got, fmt.Errorf("event stream: %w", err)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
