package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/packyard/packyard/internal/meta"
)

const edgeColumns = `name, version, repos, last_sync, last_seen, address, last_error`

// PutEdge creates or replaces an edge's record.
func (s *Store) PutEdge(ctx context.Context, e *meta.Edge) error {
	if e.Name == "" {
		return fmt.Errorf("put edge: the name is empty")
	}
	repos, err := json.Marshal(nonNilRepos(e.Repos))
	if err != nil {
		return fmt.Errorf("put edge %q: %w", e.Name, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO edges (`+edgeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, repos = excluded.repos,
			last_sync = excluded.last_sync, last_seen = excluded.last_seen, address = excluded.address,
			last_error = excluded.last_error`,
			e.Name, e.Version, string(repos), nanos(e.LastSync), nanos(e.LastSeen), e.Address, e.LastError)
		return err
	})
	if err != nil {
		return fmt.Errorf("put edge %q: %w", e.Name, err)
	}
	return nil
}

// ListEdges returns every edge ordered by name.
func (s *Store) ListEdges(ctx context.Context) ([]meta.Edge, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+edgeColumns+` FROM edges ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	defer rows.Close()
	var out []meta.Edge
	for rows.Next() {
		var (
			e              meta.Edge
			repos          string
			lastSync, seen int64
		)
		if err := rows.Scan(&e.Name, &e.Version, &repos, &lastSync, &seen, &e.Address, &e.LastError); err != nil {
			return nil, fmt.Errorf("list edges: %w", err)
		}
		if err := json.Unmarshal([]byte(repos), &e.Repos); err != nil {
			return nil, fmt.Errorf("edge %q: repositories: %w", e.Name, err)
		}
		e.LastSync, e.LastSeen = fromNanos(lastSync), fromNanos(seen)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	return out, nil
}

// DeleteEdge removes an edge's record.
func (s *Store) DeleteEdge(ctx context.Context, name string) error {
	if err := s.execOne(ctx, `DELETE FROM edges WHERE name = $1`, name); err != nil {
		return fmt.Errorf("delete edge %q: %w", name, err)
	}
	return nil
}

func nonNilRepos(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}
