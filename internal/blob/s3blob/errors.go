package s3blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/minio/minio-go/v7"

	"github.com/packyard/packyard/internal/blob"
)

// failure is the kind of an error from the S3 client.
type failure int

const (
	// other: the store answered with an error that is not about the blob
	// being missing (access denied, bucket missing, bad request, …).
	other failure = iota
	// missing: no object under the key.
	missing
	// unavailable: no usable answer (connection refused or reset, timeout,
	// TLS failure) or a server-side failure (5xx, 429 Slow Down).
	unavailable
)

// classify returns the kind of err, an error returned by the S3 client.
func classify(err error) failure {
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode != 0 {
		switch {
		case er.Code == minio.NoSuchKey:
			return missing
		case er.StatusCode >= 500, er.StatusCode == http.StatusTooManyRequests,
			er.StatusCode == http.StatusRequestTimeout:
			return unavailable
		}
		return other
	}
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &ue), errors.As(err, &ne), minio.IsNetworkOrHostDown(err, false),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED):
		return unavailable
	}
	return other
}

// wrap turns err, an error of the S3 client while doing what, into the error
// to return: the context's error if ctx is done, blob.ErrNotFound,
// blob.ErrUnavailable, or err with the store named. It records whether the
// store answered. A nil err stays nil.
func (s *Store) wrap(ctx context.Context, what string, err error) error {
	if err == nil {
		s.markUp()
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3blob: %s: %w", what, err)
	}
	switch classify(err) {
	case missing:
		s.markUp()
		return fmt.Errorf("s3blob: %s: %w", what, blob.ErrNotFound)
	case unavailable:
		s.down.Store(true)
		return fmt.Errorf("s3blob: %s: %w (%s): %w", what, blob.ErrUnavailable, s.where, err)
	}
	s.markUp()
	return fmt.Errorf("s3blob: %s (%s): %w", what, s.where, err)
}

// markUp records that the store answered.
func (s *Store) markUp() {
	if s.down.Load() {
		s.down.Store(false)
	}
}

// isExists reports whether err is the refusal of a conditional write
// because the key exists (412), or because another conditional write of it
// is in progress (409 on AWS).
func isExists(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	return er.StatusCode == http.StatusPreconditionFailed || er.Code == minio.PreconditionFailed ||
		er.Code == "ConditionalRequestConflict"
}
