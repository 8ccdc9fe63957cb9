// Package s3blob is the backend of blob.Store for S3-compatible object stores
// (AWS S3, MinIO, Ceph RGW, …).
//
// A store owns the keys under one prefix of one bucket:
//
//	<bucket>/
//	└── <prefix>/                    Config.Prefix, if any
//	    └── sha256/
//	        └── <ab>/                first two hex characters of the digest
//	            └── <abcd…full hex>  the blob's bytes, written once, never rewritten
//
// Nothing else is written there, and keys that do not fit the layout are
// ignored, so other data may share the bucket and the prefix.
//
// S3 has no rename, so a Writer keeps the bytes until Commit: in memory up to
// Config.MemoryBuffer, then in an unlinked temporary file. Commit, once the
// digest is known and checked, looks the key up and uploads only if it is
// missing, with If-None-Match: * so that a concurrent commit of the same
// bytes cannot replace the object either. A commit that finds its blob
// already stored, and last written over a minute ago, copies the object onto
// itself on the server (the same bytes) to refresh its Last-Modified, which
// garbage collection reads as the blob's age. Each PUT (one for a blob up to
// Config.PartSize, one per part of a multipart upload beyond it) carries the
// SHA-256 of its body as x-amz-content-sha256, which the server checks
// against the bytes it receives; a failed multipart upload is aborted.
//
// Errors that mean the store could not be reached, timed out or failed
// (5xx, 429) wrap blob.ErrUnavailable. After one, Create probes the bucket
// before it accepts bytes, so that uploads fail early during an outage; the
// first answer from the store ends that state.
package s3blob

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/packyard/packyard/internal/blob"
)

// blobsDir is the key segment under the prefix that holds the blobs.
const blobsDir = "sha256/"

// Store is a blob.Store that keeps blobs as objects in an S3 bucket. It is
// safe for concurrent use.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core // the same client, for its lower-level calls
	tr     *http.Transport
	where  string // "bucket B at URL", for error messages
	keys   string // "<prefix>/sha256/" or "sha256/"

	// down is set by an error that wraps blob.ErrUnavailable and cleared
	// by any answer from the store.
	down atomic.Bool

	// touchAfter is the age past which a blob stored again gets a new
	// modification time (see touch).
	touchAfter time.Duration
}

// defaultTouchAfter is Store.touchAfter: a blob stored again within a
// minute of its last write is certainly not about to be collected.
const defaultTouchAfter = time.Minute

var (
	_ blob.Store  = (*Store)(nil)
	_ blob.Putter = (*Store)(nil)
)

// Open connects to the store that cfg describes and checks that the bucket
// exists and that the credentials are accepted.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	host, secure, err := endpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = cfg.ResponseTimeout
	client, err := minio.New(host, &minio.Options{
		Creds:      creds(cfg),
		Secure:     secure,
		Transport:  tr,
		Region:     cfg.Region,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	scheme := "http"
	if secure {
		scheme = "https"
	}
	s := &Store{
		cfg:    cfg,
		client: client,
		core:   minio.Core{Client: client},
		tr:     tr,
		where:  fmt.Sprintf("bucket %s at %s://%s", cfg.Bucket, scheme, host),
		keys:   blobsDir,

		touchAfter: defaultTouchAfter,
	}
	if cfg.Prefix != "" {
		s.keys = cfg.Prefix + "/" + blobsDir
	}
	if err := s.checkBucket(ctx); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return s, nil
}

// creds returns the static credentials of cfg, or else the chain that reads
// the standard AWS environment, credentials file and instance role.
func creds(cfg Config) *credentials.Credentials {
	if cfg.AccessKey != "" {
		return credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
}

// checkBucket returns an error that says what to fix if the bucket is
// missing or the store refuses the credentials.
func (s *Store) checkBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		switch minio.ToErrorResponse(err).Code {
		case minio.AccessDenied, minio.InvalidAccessKeyID, minio.SignatureDoesNotMatch, "ExpiredToken", "InvalidToken":
			return fmt.Errorf("s3blob: %s refused the credentials (set the access and secret keys, or "+
				"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): %w", s.where, err)
		}
		return s.wrap(ctx, "check bucket", err)
	}
	s.down.Store(false)
	if !ok {
		return fmt.Errorf("s3blob: %s does not exist: create it, or configure an existing bucket", s.where)
	}
	return nil
}

// key returns the object key of a validated digest.
func (s *Store) key(d blob.Digest) string {
	return s.keys + string(d[0:2]) + "/" + string(d)
}

// Create starts a new blob whose bytes are held until Commit. While the
// store is unavailable, it first checks that the store answers again.
func (s *Store) Create(ctx context.Context, limit int64) (blob.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("s3blob: create blob: negative size limit %d", limit)
	}
	if s.down.Load() {
		if _, err := s.client.BucketExists(ctx, s.cfg.Bucket); err != nil {
			return nil, s.wrap(ctx, "create blob", err)
		}
		s.down.Store(false)
	}
	return newWriter(s, limit), nil
}

// Put stores b as Create, Write and Commit would, without copying it: b
// itself is the body of the upload. The caller must not change b until Put
// returns.
func (s *Store) Put(ctx context.Context, b []byte) (blob.Info, error) {
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	w := newWriter(s, 0)
	w.buf = b[:len(b):len(b)] // full slice: nothing can append into b's array
	w.hash(b)
	return w.Commit(ctx, "")
}

// Open returns a reader of the blob. The reader's requests run under ctx:
// it fails once ctx is done.
func (s *Store) Open(ctx context.Context, d blob.Digest) (blob.Reader, error) {
	if err := check(ctx, d); err != nil {
		return nil, err
	}
	return s.newReader(ctx, d)
}

// Stat returns the blob's size and the time it was written, to the second.
func (s *Store) Stat(ctx context.Context, d blob.Digest) (blob.Info, error) {
	if err := check(ctx, d); err != nil {
		return blob.Info{}, err
	}
	return s.stat(ctx, d)
}

func (s *Store) stat(ctx context.Context, d blob.Digest) (blob.Info, error) {
	oi, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(d), minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, s.wrap(ctx, "stat blob "+string(d), err)
	}
	s.markUp()
	return info(d, oi), nil
}

// touch gives a blob that is stored again, and was last written more than
// touchAfter ago, a new modification time, as fsblob does: garbage
// collection spares young blobs, and must not delete one that was
// unreferenced for long (left by a failed upload) and is about to be named
// again. S3 has no utime, so the object is copied onto itself on the
// server, the same bytes under the same key with a new Last-Modified. A
// copy the store refuses for another reason than an outage (an object over
// the 5 GiB copy limit) leaves the old time, as a failed utime would.
func (s *Store) touch(ctx context.Context, d blob.Digest, cur blob.Info) (blob.Info, error) {
	if time.Since(cur.ModTime) < s.touchAfter {
		return cur, nil
	}
	key := s.key(d)
	_, err := s.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: key, ReplaceMetadata: true,
			UserMetadata: map[string]string{"Content-Type": contentType}},
		minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: key})
	if err != nil {
		if err := s.wrap(ctx, "refresh blob "+string(d), err); errors.Is(err, blob.ErrUnavailable) || errors.Is(err, blob.ErrNotFound) {
			return blob.Info{}, err
		}
		return cur, nil
	}
	return s.stat(ctx, d)
}

// Delete removes the blob. S3 deletes missing keys without complaint, so it
// looks the blob up first.
func (s *Store) Delete(ctx context.Context, d blob.Digest) error {
	if err := check(ctx, d); err != nil {
		return err
	}
	if _, err := s.stat(ctx, d); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(d), minio.RemoveObjectOptions{})
	return s.wrap(ctx, "delete blob "+string(d), err)
}

// Walk lists the keys under <prefix>/sha256/ and calls fn for those that
// fit the layout. It returns fn's error unwrapped.
func (s *Store) Walk(ctx context.Context, fn func(blob.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Cancelling lctx stops the listing when Walk returns early.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	noOwner := false
	objects := s.client.ListObjectsIter(lctx, s.cfg.Bucket, minio.ListObjectsOptions{
		Prefix: s.keys, Recursive: true, FetchOwner: &noOwner,
	})
	return s.walk(ctx, objects, fn)
}

func (s *Store) walk(ctx context.Context, objects iter.Seq[minio.ObjectInfo], fn func(blob.Info) error) error {
	for oi := range objects {
		if oi.Err != nil {
			return s.wrap(ctx, "walk", oi.Err)
		}
		d, ok := s.parseKey(oi.Key)
		if !ok {
			continue
		}
		if err := fn(info(d, oi)); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.markUp()
	return nil
}

// parseKey returns the digest that key names, if it is a blob key.
func (s *Store) parseKey(key string) (blob.Digest, bool) {
	rest, ok := strings.CutPrefix(key, s.keys)
	if !ok {
		return "", false
	}
	ab, name, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	d, err := blob.ParseDigest(name)
	if err != nil || string(d[0:2]) != ab {
		return "", false
	}
	return d, true
}

// RedirectURL returns a presigned URL that downloads the blob straight from
// the store for Config.PresignTTL, or "" if Config.PresignReads is off. It
// does not check that the blob exists.
func (s *Store) RedirectURL(ctx context.Context, d blob.Digest) (string, error) {
	if err := check(ctx, d); err != nil {
		return "", err
	}
	if !s.cfg.PresignReads {
		return "", nil
	}
	u, err := s.client.PresignedGetObject(ctx, s.cfg.Bucket, s.key(d), s.cfg.PresignTTL, url.Values{})
	if err != nil {
		return "", s.wrap(ctx, "presign blob "+string(d), err)
	}
	return u.String(), nil
}

// Close releases the idle connections to the store.
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// check returns ctx's error or the error for an invalid digest.
func check(ctx context.Context, d blob.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := blob.ParseDigest(string(d)); err != nil {
		return fmt.Errorf("s3blob: %w", err)
	}
	return nil
}

// info returns the Info of the object oi. Times are truncated to the
// second, the precision of the Last-Modified header, so that Stat and Walk
// (whose listing has milliseconds) agree.
func info(d blob.Digest, oi minio.ObjectInfo) blob.Info {
	return blob.Info{Digest: d, Size: oi.Size, ModTime: oi.LastModified.Truncate(time.Second).UTC()}
}
