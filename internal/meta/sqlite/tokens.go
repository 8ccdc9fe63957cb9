package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

const tokenColumns = `id, name, hash, scope, repos, created_at, last_used`

// CreateToken inserts t.
func (s *Store) CreateToken(ctx context.Context, t *meta.Token) error {
	repos, err := json.Marshal(t.Repos)
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	at := now()
	var id int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO tokens (name, hash, scope, repos, created_at, last_used)
			VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT DO NOTHING RETURNING id`,
			t.Name, t.Hash, t.Scope, string(repos), nanos(at)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("name or hash: %w", meta.ErrExists)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	t.ID, t.CreatedAt, t.LastUsed = id, at, time.Time{}
	return nil
}

// TokenByHash returns the token with that hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*meta.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		err = meta.ErrNotFound
	}
	if err != nil {
		// The hash identifies a credential: keep it out of the message.
		return nil, fmt.Errorf("look up token by hash: %w", err)
	}
	return t, nil
}

// ListTokens returns all tokens ordered by ID.
func (s *Store) ListTokens(ctx context.Context) ([]meta.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []meta.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken removes a token by name.
func (s *Store) DeleteToken(ctx context.Context, name string) error {
	if err := s.execOne(ctx, `DELETE FROM tokens WHERE name = $1`, name); err != nil {
		return fmt.Errorf("delete token %q: %w", name, err)
	}
	return nil
}

// TouchToken records that a token was used at t; meta.ErrNotFound if there
// is no such token.
func (s *Store) TouchToken(ctx context.Context, id int64, t time.Time) error {
	if err := s.execOne(ctx, `UPDATE tokens SET last_used = $1 WHERE id = $2`, nanos(t), id); err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}

// execOne runs one statement in a write transaction and returns
// meta.ErrNotFound when it changed no row.
func (s *Store) execOne(ctx context.Context, query string, args ...any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return meta.ErrNotFound
		}
		return nil
	})
}

func scanToken(sc scanner) (*meta.Token, error) {
	var (
		t                 meta.Token
		repos             string
		created, lastUsed int64
	)
	if err := sc.Scan(&t.ID, &t.Name, &t.Hash, &t.Scope, &repos, &created, &lastUsed); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(repos), &t.Repos); err != nil {
		return nil, fmt.Errorf("token %q: repositories: %w", t.Name, err)
	}
	t.CreatedAt, t.LastUsed = fromNanos(created), fromNanos(lastUsed)
	return &t, nil
}
