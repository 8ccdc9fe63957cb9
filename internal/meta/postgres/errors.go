package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/packyard/packyard/internal/meta"
)

// dbErr marks an error that comes from not reaching the database with
// meta.ErrUnavailable, and maps the constraint violations that the queries
// do not already turn into sentinels (they guard against rows written
// outside this store) onto meta.ErrExists and meta.ErrNotFound.
func dbErr(err error) error {
	if err == nil || errors.Is(err, meta.ErrUnavailable) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", meta.ErrUnavailable, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", meta.ErrExists, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", meta.ErrNotFound, err)
		}
	}
	return err
}

// unavailable reports whether err comes from the connection rather than
// from the statement: the server could not be reached, refused the
// connection, closed it or is shutting down. Such a failure may go away
// when the call is made again.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	// Checked before the context errors: a connect timeout is one.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection_exception and its subclasses
			pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now (starting up, shutting down, in recovery)
			pe.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var ne net.Error
	// SafeToRetry is true of errors the driver raised before sending
	// anything, such as a statement on a connection already found closed.
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err)
}
