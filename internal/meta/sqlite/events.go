package sqlite

import (
	"context"
	"fmt"
	"strconv"

	"github.com/packyard/packyard/internal/meta"
)

// Events returns up to limit events with Seq > since, in order; a limit of 0
// or less means no limit.
func (s *Store) Events(ctx context.Context, since int64, limit int) ([]meta.Event, error) {
	q := `SELECT seq, type, repo, data, time FROM events WHERE seq > $1 ORDER BY seq`
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := s.r.QueryContext(ctx, q, since)
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", since, err)
	}
	defer rows.Close()
	var out []meta.Event
	for rows.Next() {
		var (
			e  meta.Event
			at int64
		)
		if err := rows.Scan(&e.Seq, &e.Type, &e.Repo, &e.Data, &at); err != nil {
			return nil, fmt.Errorf("events after %d: %w", since, err)
		}
		e.Time = fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events after %d: %w", since, err)
	}
	return out, nil
}

const sqlLastSeq = `SELECT COALESCE(MAX(seq), 0) FROM events`

// LastSeq returns the highest event sequence number, 0 if there is none.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.stmtLastSeq.QueryRowContext(ctx).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last event sequence: %w", err)
	}
	return seq, nil
}
