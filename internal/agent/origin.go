package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// origin talks to the origin server's HTTP API.
type origin struct {
	base  string // without trailing slash
	token string
	// http has no overall timeout, which would cut a large download that
	// is slow but progressing: it bounds connecting, the TLS handshake and
	// the wait for the answer's header, and idle bounds each wait for
	// data.
	http *http.Client
	// stream is for the feed, one long response watched by its own idle
	// timeout (feed_idle_timeout).
	stream *http.Client
	// idle fails a request that sent nothing for this long.
	idle time.Duration
	// maxList bounds a generation's file list, in bytes.
	maxList int64
}

// Timeouts of the requests to the origin other than the feed.
const (
	dialTimeout           = 30 * time.Second
	tlsTimeout            = 15 * time.Second
	responseHeaderTimeout = 60 * time.Second
	idleReadTimeout       = 60 * time.Second
)

func newOrigin(base, token, proxy string) (*origin, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = tlsTimeout
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: %w", proxy, err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	// The feed's header may be held back by a buffering proxy until its
	// own idle timeout decides to poll instead.
	str := tr.Clone()
	tr.ResponseHeaderTimeout = responseHeaderTimeout
	return &origin{
		base:    strings.TrimRight(base, "/"),
		token:   token,
		http:    &http.Client{Transport: tr},
		stream:  &http.Client{Transport: str},
		idle:    idleReadTimeout,
		maxList: maxListSize,
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

// errIdle means the origin sent nothing for the idle timeout.
var errIdle = errors.New("the origin sent nothing for too long")

// open sends a request with the http client and returns the response if
// it is 2xx. The request fails when the origin sends nothing for o.idle,
// before the answer or in its body; a body that keeps coming may take as
// long as it needs. The body must be closed.
func (o *origin) open(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	watchdog := time.AfterFunc(o.idle, func() { cancel(fmt.Errorf("%w (%s)", errIdle, o.idle)) })
	req, err := o.request(ctx, method, path, body)
	if err != nil {
		watchdog.Stop()
		cancel(nil)
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := o.do(o.http, req)
	if err != nil {
		watchdog.Stop()
		if c := context.Cause(ctx); errors.Is(c, errIdle) {
			err = fmt.Errorf("%s %s: %w", method, path, c)
		}
		cancel(nil)
		return nil, err
	}
	resp.Body = &idleBody{rc: resp.Body, ctx: ctx, cancel: cancel, watchdog: watchdog, idle: o.idle}
	return resp, nil
}

// idleBody is a response body whose request is cancelled when no byte
// arrives for idle.
type idleBody struct {
	rc       io.ReadCloser
	ctx      context.Context
	cancel   context.CancelCauseFunc
	watchdog *time.Timer
	idle     time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.watchdog.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		if c := context.Cause(b.ctx); errors.Is(c, errIdle) {
			err = c
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.watchdog.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// errTooLarge means an answer of the origin exceeds the agent's limit.
var errTooLarge = errors.New("answer too large")

// limitedReader reads at most n bytes of r and then fails with
// errTooLarge (io.LimitReader would end quietly, and a JSON value cut
// short would be reported as malformed).
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// getJSON fetches path into out, reading at most limit bytes.
func (o *origin) getJSON(ctx context.Context, path string, limit int64, out any) error {
	return o.getDecoded(ctx, path, limit, func(r io.Reader) error { return json.NewDecoder(r).Decode(out) })
}

// getDecoded fetches path and decodes it with decode, which reads at most
// limit bytes: more is an error that says so.
func (o *origin) getDecoded(ctx context.Context, path string, limit int64, decode func(io.Reader) error) error {
	resp, err := o.open(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := decode(&limitedReader{r: resp.Body, n: limit}); err != nil {
		if errors.Is(err, errTooLarge) {
			return fmt.Errorf("GET %s: %w: more than %d bytes", path, errTooLarge, limit)
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("GET %s: not the expected JSON: %w", path, err)
		}
		return fmt.Errorf("GET %s: %w", path, err)
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

// maxListSize bounds a generation's file list (about 200 bytes a file: a
// million files).
const maxListSize = 256 << 20

// getList fetches a file list, decoding its files one by one: the list is
// never held as text beside the decoded files.
func (o *origin) getList(ctx context.Context, repoName, path string, gl *genList) error {
	err := o.getDecoded(ctx, path, o.maxList, func(r io.Reader) error { return decodeGenList(r, gl) })
	if errors.Is(err, errTooLarge) {
		return fmt.Errorf("the origin's file list of %s is larger than the agent reads (%d bytes): %w", repoName, o.maxList, err)
	}
	return err
}

// decodeGenList decodes a genList object from r, one file at a time.
func decodeGenList(r io.Reader, gl *genList) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var dst any
		switch key {
		case "files":
			if err := decodeFiles(dec, &gl.Files); err != nil {
				return err
			}
			continue
		case "repo":
			dst = &gl.Repo
		case "format":
			dst = &gl.Format
		case "generation":
			dst = &gl.Generation
		case "seq":
			dst = &gl.Seq
		case "feed_seq":
			dst = &gl.FeedSeq
		case "since":
			dst = &gl.Since
		case "removed":
			dst = &gl.Removed
		default:
			dst = &json.RawMessage{} // a field this agent does not use
		}
		if err := dec.Decode(dst); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func decodeFiles(dec *json.Decoder, files *[]genFile) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return &json.UnmarshalTypeError{Value: fmt.Sprint(tok), Field: "files", Type: reflect.TypeFor[[]genFile]()}
	}
	for dec.More() {
		var f genFile
		if err := dec.Decode(&f); err != nil {
			return err
		}
		*files = append(*files, f)
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return nil
}

// generation returns the file list of a repository's current generation,
// or, when since > 0, its difference from generation since (gl.Since is
// then set; an origin that no longer has that generation answers 404, and
// the whole list is asked for instead).
func (o *origin) generation(ctx context.Context, repoName string, since int64) (*genList, error) {
	p := "/api/v1/repos/" + url.PathEscape(repoName) + "/generations/current/files"
	var gl genList
	if since > 0 {
		err := o.getList(ctx, repoName, p+"?since="+strconv.FormatInt(since, 10), &gl)
		var he *httpError
		if errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusBadRequest) {
			gl, err = genList{}, o.getList(ctx, repoName, p, &gl)
		}
		if err != nil {
			return nil, err
		}
	} else if err := o.getList(ctx, repoName, p, &gl); err != nil {
		return nil, err
	}
	if gl.Repo != repoName || gl.Generation <= 0 || (gl.Since != 0 && gl.Since != since) {
		return nil, fmt.Errorf("origin's file list of %s names repository %q generation %d (since %d)", repoName, gl.Repo, gl.Generation, gl.Since)
	}
	return &gl, nil
}

// blob opens the blob with that digest.
func (o *origin) blob(ctx context.Context, digest string) (io.ReadCloser, error) {
	resp, err := o.open(ctx, http.MethodGet, "/api/v1/blobs/"+digest, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// openBlobs asks for several blobs at once (POST /api/v1/blobs, the
// digests one per line) and returns the response body.
func (o *origin) openBlobs(ctx context.Context, digests string) (io.ReadCloser, error) {
	resp, err := o.open(ctx, http.MethodPost, "/api/v1/blobs", strings.NewReader(digests))
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
	resp, err := o.open(ctx, http.MethodPost, "/api/v1/edges/"+url.PathEscape(name)+"/heartbeat", bytes.NewReader(b))
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
