package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestOriginIdleTimeout: a blob download that stops sending (before its
// header or in its body) fails after the idle timeout; one that is slow
// but keeps sending takes as long as it needs, longer than that timeout.
func TestOriginIdleTimeout(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/blobs/stall-header":
		case "/api/v1/blobs/stall-body":
			_, _ = w.Write([]byte("the first bytes"))
			w.(http.Flusher).Flush()
		case "/api/v1/blobs/slow":
			for range 20 {
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
			return
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.CloseClientConnections(); srv.Close() })
	o, err := newOrigin(srv.URL, "pky_x", "")
	if err != nil {
		t.Fatal(err)
	}
	o.idle = 300 * time.Millisecond
	fetch := func(name string) ([]byte, error) {
		type result struct {
			b   []byte
			err error
		}
		ch := make(chan result, 1)
		go func() {
			rc, err := o.blob(context.Background(), name)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			ch <- result{b, err}
		}()
		select {
		case r := <-ch:
			return r.b, r.err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting after 10 s", name)
			return nil, nil
		}
	}
	for _, name := range []string{"stall-header", "stall-body"} {
		start := time.Now()
		_, err := fetch(name)
		if !errors.Is(err, errIdle) {
			t.Errorf("%s: %v; want the idle timeout", name, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: failed after %s", name, took)
		}
	}
	start := time.Now()
	b, err := fetch("slow")
	if err != nil || len(b) != 20 {
		t.Errorf("slow download: %d bytes, %v; want 20 bytes", len(b), err)
	}
	if took := time.Since(start); took < 2*o.idle {
		t.Errorf("the slow download took %s, not longer than the idle timeout: the test proves nothing", took)
	}
}

// TestOriginFileList: a file list is decoded file by file, whatever the
// order of its fields, and one larger than the agent's limit is refused
// with an error that says so.
func TestOriginFileList(t *testing.T) {
	var files []map[string]any
	for i := range 200 {
		files = append(files, map[string]any{"path": fmt.Sprintf("Packages/p%03d.rpm", i), "digest": strings.Repeat("ab", 32),
			"size": i, "content_type": "application/x-rpm", "parts": []string{strings.Repeat("cd", 32)}, "future_field": []int{1}})
	}
	files = append(files, map[string]any{"path": "x.sig", "digest": strings.Repeat("ef", 32), "size": 3, "data": []byte("sig"), "pointer": true})
	list := map[string]any{"files": files, "repo": "el", "format": "rpm", "generation": 7, "seq": 9, "feed_seq": 11,
		"current": true, "created_at": "2026-01-02T03:04:05Z", "since": 6, "removed": []string{"old.rpm"}}
	body, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("since") {
		case "6":
			_, _ = w.Write(body)
		default:
			_, _ = w.Write(bytes.Replace(body, []byte(`"files":[`), []byte(`"files":{`), 1))
		}
	}))
	t.Cleanup(srv.Close)
	o, err := newOrigin(srv.URL, "pky_x", "")
	if err != nil {
		t.Fatal(err)
	}
	gl, err := o.generation(context.Background(), "el", 6)
	if err != nil {
		t.Fatal(err)
	}
	var want genList
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*gl, want) {
		t.Errorf("decoded list differs from encoding/json's:\n got %+v\nwant %+v", gl.Files[len(gl.Files)-1], want.Files[len(want.Files)-1])
	}
	if _, err := o.generation(context.Background(), "el", 0); err == nil || !strings.Contains(err.Error(), "not the expected JSON") {
		t.Errorf("malformed list: %v", err)
	}

	o.maxList = int64(len(body)) - 1
	_, err = o.generation(context.Background(), "el", 6)
	if !errors.Is(err, errTooLarge) || !strings.Contains(err.Error(), "file list of el is larger than") {
		t.Errorf("list over the limit: %v; want an error saying the file list of el is too large", err)
	}
	o.maxList = int64(len(body))
	if _, err := o.generation(context.Background(), "el", 6); err != nil {
		t.Errorf("list exactly at the limit: %v", err)
	}
}
