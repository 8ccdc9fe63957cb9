package postgres

import (
	"context"
	"fmt"

	"github.com/packyard/packyard/internal/meta"
)

// Events returns up to limit events with Seq > since, in order; a limit of 0
// or less means no limit.
func (s *Store) Events(ctx context.Context, since int64, limit int) ([]meta.Event, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	var out []meta.Event
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT seq, type, repo, data, time FROM events
			WHERE seq > $1 ORDER BY seq LIMIT $2`, since, lim)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e  meta.Event
				at int64
			)
			if err := rows.Scan(&e.Seq, &e.Type, &e.Repo, &e.Data, &at); err != nil {
				return err
			}
			e.Time = fromNanos(at)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", since, dbErr(err))
	}
	return out, nil
}

// LastSeq returns the highest event sequence number, 0 if there is none.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT COALESCE(max(seq), 0) FROM events`).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("last event sequence: %w", dbErr(err))
	}
	return seq, nil
}
