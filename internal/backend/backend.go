// Package backend opens the metadata and blob stores a configuration
// names: SQLite and a blob directory under the data directory by default,
// or PostgreSQL and an S3-compatible object store when several nodes share
// one set of repositories.
//
//	database = "sqlite:/var/lib/packyard/packyard.db"   or "postgres://user@host/db?sslmode=…"
//	blobs    = "file:/var/lib/packyard/blobs"           or "s3://bucket/prefix?endpoint=https://minio:9000&region=us-east-1"
package backend

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/blob/s3blob"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/postgres"
	"github.com/packyard/packyard/internal/meta/sqlite"
)

// DefaultDatabase and DefaultBlobs are the stores under a data directory.
func DefaultDatabase(data string) string { return "sqlite:" + filepath.Join(data, "packyard.db") }

// DefaultBlobs is the blob directory under a data directory.
func DefaultBlobs(data string) string { return "file:" + filepath.Join(data, "blobs") }

// Local reports whether a database or blob store lives on this machine
// (and so must be used by one process at a time).
func Local(spec string) bool {
	return strings.HasPrefix(spec, "sqlite:") || strings.HasPrefix(spec, "file:")
}

// OpenMeta opens the metadata store spec names.
func OpenMeta(ctx context.Context, spec string) (meta.Store, error) {
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("database %q: no file name after the sqlite: prefix", spec)
		}
		return sqlite.Open(ctx, path)
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return postgres.Open(ctx, spec)
	default:
		return nil, fmt.Errorf("database %q: want sqlite:PATH or postgres://…", Redact(spec))
	}
}

// BlobOptions are settings of the blob store that are not in its URL.
type BlobOptions struct {
	// PresignReads lets an S3 store hand out presigned download URLs.
	PresignReads bool
}

// OpenBlobs opens the blob store spec names.
func OpenBlobs(ctx context.Context, spec string, opts BlobOptions) (blob.Store, error) {
	switch {
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, fmt.Errorf("blobs %q: no directory after the file: prefix", spec)
		}
		return fsblob.Open(path)
	case strings.HasPrefix(spec, "s3://"):
		cfg, err := s3blob.ParseURL(spec)
		if err != nil {
			return nil, err
		}
		cfg.PresignReads = opts.PresignReads
		return s3blob.Open(ctx, cfg)
	default:
		return nil, fmt.Errorf("blobs %q: want file:PATH or s3://BUCKET/PREFIX?endpoint=URL", spec)
	}
}

// Redact hides the password of a database URL, for messages and logs.
func Redact(spec string) string {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return spec
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return spec
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***" + rest[at:]
}
