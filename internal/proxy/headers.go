package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// headerValues interns the one-element value slices of response headers
// (content types, cache policies, ETags and lengths of cached files), so
// that answering a cached file sets its headers without allocating:
// net/http copies handler headers when it writes them and never changes
// the slices it is given.
type headerValues struct {
	m sync.Map // string → []string
	n atomic.Int64
	// lengths holds recent Content-Length values by size modulo its
	// length: no string is formatted per request for a file served again.
	lengths [1024]atomic.Pointer[lengthValue]
}

type lengthValue struct {
	n int64
	v []string
}

// maxInterned bounds the interned values; past it they are forgotten.
const maxInterned = 1 << 14

func (hv *headerValues) get(v string) []string {
	if s, ok := hv.m.Load(v); ok {
		return s.([]string)
	}
	if hv.n.Add(1) > maxInterned {
		hv.m.Clear()
		hv.n.Store(1)
	}
	s := []string{v}
	hv.m.Store(v, s)
	return s
}

// set sets header k (canonical form) to the interned value v.
func (hv *headerValues) set(h http.Header, k, v string) { h[k] = hv.get(v) }

// length interns a Content-Length value.
func (hv *headerValues) length(n int64) []string {
	slot := &hv.lengths[uint64(n)%uint64(len(hv.lengths))]
	if lv := slot.Load(); lv != nil && lv.n == n {
		return lv.v
	}
	v := []string{strconv.FormatInt(n, 10)}
	slot.Store(&lengthValue{n: n, v: v})
	return v
}

// etag returns the ETag value of a blob digest ("DIGEST", quoted),
// interned by the digest: no string is built per request.
func (hv *headerValues) etag(digest string) []string {
	if s, ok := hv.m.Load(etagKey(digest)); ok {
		return s.([]string)
	}
	if hv.n.Add(1) > maxInterned {
		hv.m.Clear()
		hv.n.Store(1)
	}
	s := []string{`"` + digest + `"`}
	hv.m.Store(etagKey(digest), s)
	return s
}

// etagKey keeps ETag values apart from the other interned values.
type etagKey string
