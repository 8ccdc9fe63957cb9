package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// What a proxy sends upstream is bounded three ways: the path a client
// asks for must mean the same file upstream (checkPath, upstreamURL), a
// redirect may only lead to a configured origin (checkRedirect), and an
// upstream that just failed is not asked again for a while (backoff).

// ErrBadPath means a client asked for a path that cannot be sent upstream
// as it is (encoded traversal, query or fragment characters, control
// characters, backslashes): 400.
var ErrBadPath = errors.New("bad path")

// CheckPath reports whether p (relative to the repository root, as the
// HTTP layer decoded it) can be asked of an upstream without changing its
// meaning. Every segment must be non-empty, not "." or "..", and free of
// backslashes, '?', '#', control characters and invalid UTF-8, also once
// percent-decoded (any number of times): an upstream, or a server behind
// it, that decodes the path again must not see a traversal either.
func CheckPath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty", ErrBadPath)
	}
	for _, seg := range strings.Split(p, "/") {
		if err := checkSegment(seg); err != nil {
			return fmt.Errorf("%w: %q: %v", ErrBadPath, p, err)
		}
	}
	return nil
}

func checkSegment(seg string) error {
	// Each round of decoding shortens a segment that has an escape, so
	// this ends.
	for {
		switch seg {
		case "":
			return errors.New("empty segment")
		case ".", "..":
			return errors.New("dot segment (possibly percent-encoded)")
		}
		if !utf8.ValidString(seg) {
			return errors.New("not UTF-8")
		}
		for _, c := range seg {
			switch {
			case c < 0x20 || c == 0x7f:
				return errors.New("control character")
			case c == '\\' || c == '?' || c == '#' || c == '/':
				return fmt.Errorf("%q (possibly percent-encoded)", c)
			}
		}
		if !strings.Contains(seg, "%") {
			return nil
		}
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == seg {
			// A lone '%' is a literal character: escaped as %25
			// upstream, it stays one.
			return nil
		}
		seg = dec
	}
}

// upstreamURL is base (ending in "/") followed by p with every segment
// escaped: the upstream sees the bytes of p's segments, nothing more
// ('%' becomes %25, so "%2e%2e" stays a name and is not decoded into "..").
func upstreamURL(base, p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return base + strings.Join(segs, "/")
}

// maxRedirects bounds the redirects followed for one upstream request.
const maxRedirects = 5

// errRedirect refuses a redirect (to another origin, or one too many).
var errRedirect = errors.New("redirect refused")

// originsKey carries the origins a request may be redirected to.
type originsKey struct{}

// origin is a URL's scheme and host ("https://mirror.example"), lower case.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// allowedOrigins are the origins a request to src may be redirected to:
// its own and those of every upstream and peer of the repository.
func (rc *repoConfig) allowedOrigins() map[string]bool {
	out := map[string]bool{}
	for _, s := range append(append([]source(nil), rc.upstreams...), rc.peers...) {
		if u, err := url.Parse(s.base); err == nil {
			out[origin(u)] = true
		}
	}
	return out
}

// checkRedirect is the upstream client's redirect policy: at most
// maxRedirects hops, each to the origin of a configured upstream or peer
// (mirrors that redirect to a different host must be listed as upstreams
// themselves). Anything else could point the server at hosts of its own
// network (SSRF).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: more than %d redirects from %s", errRedirect, maxRedirects, via[0].URL.Redacted())
	}
	allowed, _ := req.Context().Value(originsKey{}).(map[string]bool)
	if !allowed[origin(req.URL)] {
		return fmt.Errorf("%w: %s redirects to %s, which is not one of the repository's upstreams or peers (list it as an upstream to allow it)",
			errRedirect, via[len(via)-1].URL.Redacted(), req.URL.Redacted())
	}
	return nil
}

// withOrigins attaches the origins a request may be redirected to.
func withOrigins(ctx context.Context, rc *repoConfig) context.Context {
	return context.WithValue(ctx, originsKey{}, rc.allowedOrigins())
}

// Backoff: an upstream or peer that failed (no connection, timeout, 502,
// 503, 504) is skipped for a while, so that with an upstream down each
// miss fails over (or serves stale) at once instead of waiting out a
// timeout. The pause doubles with each failure in a row, up to
// backoffMax, and ends with the first success.
const (
	backoffMin = 5 * time.Second
	backoffMax = time.Minute
)

// downState is what the proxy remembers of a failing source.
type downState struct {
	until    time.Time
	failures int
	err      error
}

// skipped returns the remembered error of a source in backoff, or nil.
func (p *Proxy) skipped(base string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.down[base]
	if !ok || !p.now().Before(d.until) {
		return nil
	}
	return fmt.Errorf("%w: %w (not asked again until %s)", errBackoff, d.err, d.until.Format(time.RFC3339))
}

// errBackoff marks a source skipped because it failed moments ago.
var errBackoff = errors.New("skipped, failed recently")

// failed remembers that a source failed.
func (p *Proxy) failed(base string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.down[base]
	d.failures++
	pause := backoffMin << min(d.failures-1, 4)
	d.until, d.err = p.now().Add(min(pause, backoffMax)), err
	p.down[base] = d
}

// succeeded forgets a source's failures.
func (p *Proxy) succeeded(base string) {
	p.mu.Lock()
	delete(p.down, base)
	p.mu.Unlock()
}
