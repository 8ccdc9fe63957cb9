package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

// Edge reports, like tokens, are not part of the change feed: their
// statements do not take the write lock.

const edgeColumns = `name, version, repos, last_sync, last_seen, address, last_error`

// PutEdge creates or replaces an edge's record.
func (s *Store) PutEdge(ctx context.Context, e *meta.Edge) error {
	if e.Name == "" {
		return fmt.Errorf("put edge: the name is empty")
	}
	repos := e.Repos
	if repos == nil {
		repos = map[string]int64{}
	}
	b, err := json.Marshal(repos)
	if err != nil {
		return fmt.Errorf("put edge %q: %w", e.Name, err)
	}
	err = s.write(ctx, plain, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO edges (`+edgeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, repos = excluded.repos,
			last_sync = excluded.last_sync, last_seen = excluded.last_seen, address = excluded.address,
			last_error = excluded.last_error`,
			e.Name, e.Version, string(b), nanos(e.LastSync), nanos(e.LastSeen), e.Address, e.LastError)
		return err
	})
	if err != nil {
		return fmt.Errorf("put edge %q: %w", e.Name, dbErr(err))
	}
	return nil
}

// ListEdges returns every edge ordered by name.
func (s *Store) ListEdges(ctx context.Context) ([]meta.Edge, error) {
	var out []meta.Edge
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT `+edgeColumns+` FROM edges ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e              meta.Edge
				repos          string
				lastSync, seen int64
			)
			if err := rows.Scan(&e.Name, &e.Version, &repos, &lastSync, &seen, &e.Address, &e.LastError); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(repos), &e.Repos); err != nil {
				return fmt.Errorf("edge %q: repositories: %w", e.Name, err)
			}
			e.LastSync, e.LastSeen = fromNanos(lastSync), fromNanos(seen)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", dbErr(err))
	}
	return out, nil
}

// DeleteEdge removes an edge's record.
func (s *Store) DeleteEdge(ctx context.Context, name string) error {
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM edges WHERE name = $1`, name)
		if err == nil && tag.RowsAffected() == 0 {
			err = meta.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete edge %q: %w", name, dbErr(err))
	}
	return nil
}
