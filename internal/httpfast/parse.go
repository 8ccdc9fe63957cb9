// Package httpfast answers the commonest request of a package server —
// a plain GET or HEAD of a file that is held in memory — on keep-alive
// HTTP/1.1 connections without net/http's per-request machinery, and
// hands every other request, with its connection, to net/http.
//
// It recognises a strict subset of HTTP/1.1: a request is answered here
// only if its request line and every header are in a shape and from a
// list that cannot change the answer (no credentials, preconditions,
// ranges, bodies or upgrades), and only if the handler has the whole
// answer at hand. Anything else, well-formed or not, goes to net/http
// byte for byte, which then owns the connection; so net/http remains the
// judge of every request that is not plainly harmless.
package httpfast

import (
	"bytes"
	"path"
)

// maxHeader bounds a request's head read here; a longer one goes to
// net/http (which applies the server's own limit).
const maxHeader = 8 << 10

// Request is a request the fast path may answer.
type Request struct {
	// Head is true for HEAD, false for GET.
	Head bool
	// Path is the request target: an absolute, clean path of printable
	// ASCII, with no query, fragment or percent-encoding.
	Path string
	// Close is true if the client asked to close the connection after
	// the answer.
	Close bool
	// IfModifiedSince is true if the request has an If-Modified-Since
	// header: the handler must decline unless its answer has no
	// Last-Modified (then net/http would ignore the header too).
	IfModifiedSince bool
}

// parse reads the request head at the start of b (which ends with its
// blank line at b[:n]). ok is false if b is not a request the fast path
// takes: the caller then hands it to net/http.
func parse(b []byte) (req Request, ok bool) {
	line, rest, found := bytes.Cut(b, crlf)
	if !found {
		return req, false
	}
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		line, req.Head = line[5:], true
	default:
		return req, false
	}
	target, proto, found := bytes.Cut(line, []byte(" "))
	if !found || string(proto) != "HTTP/1.1" || !plainTarget(target) {
		return req, false
	}
	var (
		host bool
		buf  [32]byte
	)
	for {
		var h []byte
		h, rest, found = bytes.Cut(rest, crlf)
		if !found {
			return req, false
		}
		if len(h) == 0 {
			break
		}
		name, value, found := bytes.Cut(h, []byte(":"))
		if !found || !token(name) {
			return req, false
		}
		value = bytes.Trim(value, " \t")
		if !printable(value) {
			return req, false
		}
		switch string(lower(&buf, name)) {
		case "host":
			if host || !hostValue(value) {
				return req, false
			}
			host = true
		case "connection":
			switch string(lower(&buf, value)) {
			case "keep-alive":
			case "close":
				req.Close = true
			default:
				return req, false
			}
		case "if-modified-since":
			req.IfModifiedSince = true
		case "user-agent", "accept", "accept-encoding", "accept-language", "cache-control", "pragma",
			"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded", "via":
			// Ignored on both paths for the files the fast path serves:
			// packyard never compresses a file on the fly, a cache's
			// freshness is its max_age, and what a load balancer adds
			// only matters to generated configuration files.
		default:
			return req, false
		}
	}
	if !host {
		return req, false // net/http answers 400
	}
	req.Path = string(target)
	return req, true
}

var crlf = []byte("\r\n")

// plainTarget reports whether t is an absolute, clean path with nothing
// that net/http would decode or redirect: of the bytes that net/url leaves
// as they are in a path (so that URL.RawPath stays empty, as the slow
// path's route requires).
func plainTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' || len(t) > 2048 {
		return false
	}
	for _, c := range t {
		if c >= 0x80 || !pathChar[c] {
			return false
		}
	}
	s := string(t)
	return path.Clean(s) == s
}

var pathChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-_.~/$&+,:;=@" {
		t[c] = true
	}
	return t
}()

// token reports whether b is a non-empty HTTP token (RFC 9110 5.6.2).
func token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// printable reports whether a header value is printable ASCII, spaces
// and tabs (obs-text and control bytes go to net/http).
func printable(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// hostValue reports whether a Host value is a plain host[:port]: letters,
// digits and ".-_:[]" (no user info, no path).
func hostValue(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// lower returns ASCII b in lower case, in buf; nil if b is longer than
// any name or value compared.
func lower(buf *[32]byte, b []byte) []byte {
	if len(b) > len(buf) {
		return nil
	}
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(b)]
}
