package s3blob

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Defaults and bounds of Config fields.
const (
	DefaultPartSize        = 16 << 20
	DefaultMemoryBuffer    = 8 << 20
	DefaultMaxRetries      = 3
	DefaultResponseTimeout = 30 * time.Second
	DefaultPresignTTL      = 15 * time.Minute

	// S3 refuses parts under 5 MiB (except the last) or over 5 GiB, more
	// than 10,000 parts, and presigned URLs valid for more than 7 days.
	minPartSize   = 5 << 20
	maxPartSize   = 5 << 30
	maxParts      = 10000
	maxPresignTTL = 7 * 24 * time.Hour

	// dialTimeout bounds connecting to the store, so that an unreachable
	// host fails in seconds rather than after the kernel's minutes.
	dialTimeout = 5 * time.Second
	// awsEndpoint is used when Config.Endpoint is empty.
	awsEndpoint = "s3.amazonaws.com"
)

// Config configures a Store. Only Bucket is required; zero fields take the
// defaults above.
type Config struct {
	// Endpoint is the S3 server: "host[:port]", spoken to over TLS, or an
	// http:// (no TLS) or https:// URL with no path. Empty means AWS S3.
	Endpoint string
	// Bucket holds the blobs. It must exist: Open does not create it.
	Bucket string
	// Prefix is put, with a slash, before every key, so that one bucket can
	// hold the blobs of several installations. Empty: keys start at sha256/.
	Prefix string
	// Region of the bucket. Empty: the client asks the server once.
	Region string
	// AccessKey, SecretKey and SessionToken are the credentials. When
	// AccessKey is empty they come from AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else from
	// ~/.aws/credentials, else from the EC2/ECS instance role.
	AccessKey    string
	SecretKey    string
	SessionToken string
	// PartSize is the size of the parts of a multipart upload; a blob up to
	// this size is sent in one PUT. 5 MiB to 5 GiB. A blob has at most
	// 10,000 parts, so PartSize also bounds the largest blob (16 MiB: 160 GiB).
	PartSize int64
	// MemoryBuffer is how many bytes a Writer keeps in memory before it
	// moves them to a temporary file in TempDir. Every Writer in progress
	// may hold this much.
	MemoryBuffer int64
	// TempDir holds the temporary files of Writers; default os.TempDir().
	// A file is unlinked as soon as it is created, so none is ever left
	// behind, even by a process that is killed.
	TempDir string
	// MaxRetries is the number of attempts at each request before an error
	// is returned; 1 disables retries.
	MaxRetries int
	// ResponseTimeout bounds how long one attempt waits for the store's
	// response headers once the request is sent. A store that accepts
	// connections but does not answer fails a call after about MaxRetries ×
	// ResponseTimeout.
	ResponseTimeout time.Duration
	// PresignReads makes RedirectURL hand out presigned GET URLs, so that
	// clients can be redirected to download blobs from the store directly.
	PresignReads bool
	// PresignTTL is how long a presigned URL stays valid; at most 7 days.
	PresignTTL time.Duration
}

// withDefaults returns c with its zero fields set to their defaults, or an
// error that names the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Bucket == "" {
		return c, errors.New("s3blob: no bucket configured")
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return c, fmt.Errorf("s3blob: bucket %q: %w", c.Bucket, err)
	}
	prefix, err := cleanPrefix(c.Prefix)
	if err != nil {
		return c, err
	}
	c.Prefix = prefix
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartSize < minPartSize || c.PartSize > maxPartSize {
		return c, fmt.Errorf("s3blob: part size %d is not between 5 MiB and 5 GiB", c.PartSize)
	}
	if c.MemoryBuffer == 0 {
		c.MemoryBuffer = DefaultMemoryBuffer
	}
	if c.MemoryBuffer < 0 {
		return c, fmt.Errorf("s3blob: negative memory buffer %d", c.MemoryBuffer)
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MaxRetries < 0 {
		return c, fmt.Errorf("s3blob: negative retry count %d", c.MaxRetries)
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	if c.ResponseTimeout < 0 {
		return c, fmt.Errorf("s3blob: negative response timeout %v", c.ResponseTimeout)
	}
	if c.PresignTTL == 0 {
		c.PresignTTL = DefaultPresignTTL
	}
	if c.PresignTTL < time.Second || c.PresignTTL > maxPresignTTL {
		return c, fmt.Errorf("s3blob: presigned URL lifetime %v is not between 1s and 7 days", c.PresignTTL)
	}
	return c, nil
}

// cleanPrefix trims the slashes around p and checks that it is a sequence
// of plain path segments.
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("s3blob: prefix %q: empty, \".\" or \"..\" path segment", p)
		}
	}
	return p, nil
}

// endpoint splits an Endpoint into the host[:port] that the client takes and
// whether it speaks TLS.
func endpoint(e string) (host string, secure bool, err error) {
	if e == "" {
		return awsEndpoint, true, nil
	}
	if !strings.Contains(e, "://") {
		if strings.ContainsAny(e, "/?#@") {
			return "", false, fmt.Errorf("s3blob: endpoint %q: want host[:port] or an http:// or https:// URL", e)
		}
		return e, true, nil
	}
	u, err := url.Parse(e)
	if err != nil {
		return "", false, fmt.Errorf("s3blob: endpoint: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("s3blob: endpoint %q: scheme must be http or https", e)
	case u.Host == "":
		return "", false, fmt.Errorf("s3blob: endpoint %q: no host", e)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return "", false, fmt.Errorf("s3blob: endpoint %q: want a scheme and a host only, with no path, query or user", e)
	}
	return u.Host, u.Scheme == "https", nil
}

// ParseURL parses a store URL of the form
//
//	s3://BUCKET[/PREFIX][?endpoint=URL][&region=REGION]
//
// where URL is the server's http:// or https:// address (default: AWS S3).
// Credentials are not part of the URL: they come from the environment.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("s3blob: store URL: %w", err)
	}
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("s3blob: store URL %q: %s (want s3://BUCKET/PREFIX?endpoint=URL&region=REGION)",
			s, fmt.Sprintf(format, args...))
	}
	switch {
	case u.Scheme != "s3":
		return bad("scheme is not s3")
	case u.Opaque != "":
		return bad("no // after s3:")
	case u.User != nil:
		return bad("credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case u.Host == "":
		return bad("no bucket")
	case u.Fragment != "":
		return bad("unexpected #fragment")
	}
	c := Config{Bucket: u.Host, Prefix: u.Path}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return bad("%s given %d times", k, len(v))
		}
		switch k {
		case "endpoint":
			c.Endpoint = v[0]
			if !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
				return bad("endpoint must start with http:// or https://")
			}
			if _, _, err := endpoint(c.Endpoint); err != nil {
				return Config{}, err
			}
		case "region":
			c.Region = v[0]
		default:
			return bad("unknown parameter %q", k)
		}
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return bad("bucket %q: %v", c.Bucket, err)
	}
	if c.Prefix, err = cleanPrefix(c.Prefix); err != nil {
		return Config{}, err
	}
	return c, nil
}
