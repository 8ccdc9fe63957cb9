package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

// Tokens are not part of the change feed: their statements do not take the
// write lock, so that recording a token's use does not wait behind
// publishes.

const tokenColumns = `id, name, hash, scope, repos, created_at, last_used`

// CreateToken inserts t.
func (s *Store) CreateToken(ctx context.Context, t *meta.Token) error {
	repos, err := json.Marshal(t.Repos)
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	at := now()
	var id int64
	err = s.write(ctx, plain, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO tokens (name, hash, scope, repos, created_at, last_used)
			VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT DO NOTHING RETURNING id`,
			t.Name, t.Hash, t.Scope, string(repos), nanos(at)).Scan(&id)
		if errNoRows(err) {
			return fmt.Errorf("name or hash: %w", meta.ErrExists)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, dbErr(err))
	}
	t.ID, t.CreatedAt, t.LastUsed = id, at, time.Time{}
	return nil
}

// TokenByHash returns the token with that hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*meta.Token, error) {
	var t *meta.Token
	err := s.read(ctx, func() (err error) {
		t, err = scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		// The hash identifies a credential: keep it out of the message.
		return nil, fmt.Errorf("look up token by hash: %w", dbErr(err))
	}
	return t, nil
}

// ListTokens returns all tokens ordered by ID.
func (s *Store) ListTokens(ctx context.Context) ([]meta.Token, error) {
	var out []meta.Token
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanToken(rows)
			if err != nil {
				return err
			}
			out = append(out, *t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", dbErr(err))
	}
	return out, nil
}

// DeleteToken removes a token by name.
func (s *Store) DeleteToken(ctx context.Context, name string) error {
	// In a transaction, so that it is retried only if it surely did not
	// happen: a second attempt would not find the token.
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tokens WHERE name = $1`, name)
		if err == nil && tag.RowsAffected() == 0 {
			err = meta.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete token %q: %w", name, dbErr(err))
	}
	return nil
}

// TouchToken records that a token was used at t; meta.ErrNotFound if there
// is no such token.
func (s *Store) TouchToken(ctx context.Context, id int64, t time.Time) error {
	// One statement, on every authenticated request: doing it twice does
	// no harm, so it is retried like a read.
	var n int64
	err := s.read(ctx, func() error {
		tag, err := s.pool.Exec(ctx, `UPDATE tokens SET last_used = $1 WHERE id = $2`, nanos(t), id)
		n = tag.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = meta.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("touch token %d: %w", id, dbErr(err))
	}
	return nil
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
