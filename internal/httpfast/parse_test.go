package httpfast

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		want       *Request // nil: handed to net/http
	}{
		{"get", "GET /deb/dists/stable/InRelease HTTP/1.1\r\nHost: h:80\r\nUser-Agent: Debian APT-HTTP/1.3 (2.6.1)\r\n\r\n",
			&Request{Path: "/deb/dists/stable/InRelease"}},
		{"head", "HEAD /a/b HTTP/1.1\r\nhost: [::1]:8080\r\n\r\n", &Request{Head: true, Path: "/a/b"}},
		{"close", "GET /a/b HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", &Request{Path: "/a/b", Close: true}},
		{"keep-alive", "GET /a/b HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n" +
			"Accept-Language: en\r\nCache-Control: no-cache\r\nPragma: no-cache\r\n\r\n", &Request{Path: "/a/b"}},
		{"if-modified-since", "GET /a HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: Mon, 07 Dec 2026 02:00:00 GMT\r\n\r\n",
			&Request{Path: "/a", IfModifiedSince: true}},
		{"load balancer", "GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Host: p\r\nX-Real-IP: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nVia: 1.1 lb\r\n\r\n", &Request{Path: "/a"}},
		{"value spaces", "GET /a HTTP/1.1\r\nHost:  h \t\r\nUser-Agent:libdnf (Debian 12)\r\n\r\n", &Request{Path: "/a"}},

		{"no host", "GET /a HTTP/1.1\r\nUser-Agent: x\r\n\r\n", nil},
		{"two hosts", "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", nil},
		{"bad host", "GET /a HTTP/1.1\r\nHost: a/b\r\n\r\n", nil},
		{"empty host", "GET /a HTTP/1.1\r\nHost: \r\n\r\n", nil},
		{"http/1.0", "GET /a HTTP/1.0\r\nHost: h\r\n\r\n", nil},
		{"post", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", nil},
		{"put", "PUT /a HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"lower-case method", "get /a HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"query", "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"escaped", "GET /a%2fb HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"unclean", "GET /a/../b HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"double slash", "GET /a//b HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"trailing slash", "GET /a/ HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"absolute form", "GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"asterisk", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"two spaces", "GET  /a HTTP/1.1\r\nHost: h\r\n\r\n", nil},
		{"bare LF", "GET /a HTTP/1.1\nHost: h\n\n", nil},
		{"authorization", "GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer x\r\n\r\n", nil},
		{"range", "GET /a HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n", nil},
		{"if-none-match", "GET /a HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n", nil},
		{"cache-only", "GET /a HTTP/1.1\r\nHost: h\r\nX-Packyard-Cache-Only: 1\r\n\r\n", nil},
		{"content-length", "GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", nil},
		{"chunked", "GET /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", nil},
		{"upgrade", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", nil},
		{"connection list", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n", nil},
		{"space before colon", "GET /a HTTP/1.1\r\nHost : h\r\n\r\n", nil},
		{"folded", "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\n b\r\n\r\n", nil},
		{"no colon", "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent\r\n\r\n", nil},
		{"control byte", "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: a\x01b\r\n\r\n", nil},
		{"obs-text", "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: caf\xc3\xa9\r\n\r\n", nil},
		{"non-ascii path", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parse([]byte(tc.head))
			if tc.want == nil {
				if ok {
					t.Fatalf("taken by the fast path as %+v; want handed to net/http", got)
				}
				return
			}
			if !ok || got != *tc.want {
				t.Fatalf("parse = %+v, %v; want %+v", got, ok, *tc.want)
			}
		})
	}
}

func TestHeadLen(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET", 27},
		{"GET / HTTP/1.1\nHost: h\n\nX", 24},
		{"GET / HTTP/1.1\r\nHost: h\n\r\n", 26},
		{"GET / HTTP/1.1\r\nHost: h\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r", -1},
		{"", -1},
		{"\r\n\r\n", 4},
	} {
		if got := headLen([]byte(tc.in)); got != tc.want {
			t.Errorf("headLen(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// FuzzParse: whatever the bytes, a request the fast path takes is one
// that net/http reads the same way — the same method and path, the same
// wish to close, no body — so that answering it here cannot differ from
// net/http's reading of it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"GET /deb/dists/stable/InRelease HTTP/1.1\r\nHost: h:80\r\nUser-Agent: x\r\n\r\n",
		"HEAD /a/b HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n",
		"GET /a HTTP/1.1\nHost: h\n\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"GET /a HTTP/1.1\r\nHost: h\r\nIf-Modified-Since:\r\n\r\nGET /b HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headLen(b)
		if n < 0 {
			return
		}
		req, ok := parse(b[:n])
		if !ok {
			return
		}
		// All of b, to see that net/http's head ends where the fast
		// path's does.
		rd := bytes.NewReader(b)
		br := bufio.NewReaderSize(rd, len(b)+16)
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("taken by the fast path (%+v) but net/http refuses it: %v", req, err)
		}
		if used := len(b) - br.Buffered() - rd.Len(); used != n {
			t.Fatalf("head of %d bytes; net/http read %d", n, used)
		}
		method := http.MethodGet
		if req.Head {
			method = http.MethodHead
		}
		switch {
		case r.Method != method:
			t.Fatalf("method %q, net/http reads %q", method, r.Method)
		case r.URL.Path != req.Path || r.URL.RawPath != "" || r.URL.RawQuery != "" || r.RequestURI != req.Path:
			t.Fatalf("path %q, net/http reads %q (raw %q, query %q)", req.Path, r.URL.Path, r.URL.RawPath, r.URL.RawQuery)
		case r.Close != req.Close:
			t.Fatalf("close %v, net/http reads %v", req.Close, r.Close)
		case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
			t.Fatalf("net/http reads a body (length %d, %v)", r.ContentLength, r.TransferEncoding)
		case r.ProtoMajor != 1 || r.ProtoMinor != 1:
			t.Fatalf("net/http reads %s", r.Proto)
		}
		for k := range r.Header {
			switch k {
			case "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Pragma", "Connection",
				"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Forwarded", "Via":
			case "If-Modified-Since":
				if !req.IfModifiedSince {
					t.Fatal("If-Modified-Since not reported")
				}
			default:
				t.Fatalf("net/http reads header %q, which the fast path does not ignore", k)
			}
		}
		if req.IfModifiedSince && len(r.Header["If-Modified-Since"]) == 0 {
			t.Fatal("If-Modified-Since reported, net/http reads none")
		}
		if strings.ContainsAny(r.Host, "/@?#") {
			t.Fatalf("host %q", r.Host)
		}
	})
}
