package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// publishLockID maps a repository ID onto the second key of its publish
// lock. IDs beyond 32 bits fold onto others, which at worst makes two
// repositories' publishers wait for each other.
func publishLockID(repoID int64) int32 {
	return int32(uint32(repoID) ^ uint32(uint64(repoID)>>32))
}

// errClosed is the cause of the closing context.
var errClosed = errors.New("metadata store closed")

// LockPublish blocks until this process holds the publishing lock of the
// repository, or ctx ends, or the store is closed. The lock is a
// session-level advisory lock held by a connection of a pool of its own;
// the returned function releases it and returns the connection, or closes
// the connection if that fails (the server then releases the lock as the
// session ends). If the connection is lost meanwhile, so is the lock.
func (s *Store) LockPublish(ctx context.Context, repoID int64) (unlock func(), err error) {
	id := publishLockID(repoID)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.closing, func() { cancel(errClosed) })
	defer stop()

	conn, err := s.locks.Acquire(ctx)
	if err != nil {
		return nil, s.lockErr(ctx, repoID, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClassPublish, id); err != nil {
		// The wait was interrupted, or the connection failed; either way
		// the session must not live on, in case it got the lock after all.
		release(conn, false)
		return nil, s.lockErr(ctx, repoID, err)
	}
	s.heldMu.Lock()
	if s.closing.Err() != nil {
		s.heldMu.Unlock()
		release(conn, false)
		return nil, s.lockErr(ctx, repoID, errClosed)
	}
	s.held[conn] = true
	s.heldMu.Unlock()
	return func() { s.unlock(conn, lockClassPublish, id) }, nil
}

// lockErr describes a failed LockPublish: by the end of ctx if it ended
// (the driver reports the statement it cancelled instead).
func (s *Store) lockErr(ctx context.Context, repoID int64, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		err = cause
	}
	return fmt.Errorf("lock publishing of repository %d: %w", repoID, dbErr(err))
}

// unlock releases a session-level advisory lock, once: later calls, and
// calls after Close released it, do nothing.
func (s *Store) unlock(conn *pgxpool.Conn, class, id int32) {
	s.heldMu.Lock()
	held := s.held[conn]
	delete(s.held, conn)
	s.heldMu.Unlock()
	if !held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	var released bool
	err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1, $2)`, class, id).Scan(&released)
	release(conn, err == nil && released)
}

// TryLockSync takes the mirror-sync lock of the repository if it is free,
// without waiting: ok is false when another session (another node's sync)
// holds it. Like LockPublish it is a session-level advisory lock on a
// connection of the lock pool, released by the returned function or with
// the session.
func (s *Store) TryLockSync(ctx context.Context, repoID int64) (unlock func(), ok bool, err error) {
	id := publishLockID(repoID)
	conn, err := s.locks.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock the sync of repository %d: %w", repoID, dbErr(err))
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClassSync, id).Scan(&ok); err != nil {
		release(conn, false)
		return nil, false, fmt.Errorf("lock the sync of repository %d: %w", repoID, dbErr(err))
	}
	if !ok {
		release(conn, true)
		return nil, false, nil
	}
	s.heldMu.Lock()
	if s.closing.Err() != nil {
		s.heldMu.Unlock()
		release(conn, false)
		return nil, false, fmt.Errorf("lock the sync of repository %d: %w", repoID, errClosed)
	}
	s.held[conn] = true
	s.heldMu.Unlock()
	return func() { s.unlock(conn, lockClassSync, id) }, true, nil
}
