package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

const repoColumns = `id, name, format, kind, config, current_generation, created_at, updated_at`

// CreateRepo inserts r and appends a repo.created event.
func (s *Store) CreateRepo(ctx context.Context, r *meta.Repo) error {
	var (
		id int64
		at time.Time
	)
	err := s.write(ctx, appending, func(tx pgx.Tx) error {
		at = now()
		err := tx.QueryRow(ctx, `INSERT INTO repos (name, format, kind, config, current_generation, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT DO NOTHING RETURNING id`,
			r.Name, r.Format, r.Kind, blob(r.Config), nanos(at)).Scan(&id)
		if errNoRows(err) {
			return meta.ErrExists
		}
		if err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, meta.EventRepoCreated, r.Name, repoEvent(id, r.Format, r.Kind), at)
		return err
	})
	if err != nil {
		return fmt.Errorf("create repository %q: %w", r.Name, dbErr(err))
	}
	r.ID, r.CreatedAt, r.UpdatedAt, r.CurrentGeneration = id, at, at, 0
	return nil
}

// GetRepo returns the repository by name.
func (s *Store) GetRepo(ctx context.Context, name string) (*meta.Repo, error) {
	var r *meta.Repo
	err := s.read(ctx, func() (err error) {
		r, err = scanRepo(s.pool.QueryRow(ctx, `SELECT `+repoColumns+` FROM repos WHERE name = $1`, name))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get repository %q: %w", name, dbErr(err))
	}
	return r, nil
}

// ListRepos returns all repositories ordered by name.
func (s *Store) ListRepos(ctx context.Context) ([]meta.Repo, error) {
	var out []meta.Repo
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT `+repoColumns+` FROM repos ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRepo(rows)
			if err != nil {
				return err
			}
			out = append(out, *r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", dbErr(err))
	}
	return out, nil
}

// UpdateRepoConfig replaces a repository's Config and appends a repo.updated
// event.
func (s *Store) UpdateRepoConfig(ctx context.Context, name string, config []byte) error {
	err := s.write(ctx, appending, func(tx pgx.Tx) error {
		at := now()
		var (
			id           int64
			format, kind string
		)
		err := tx.QueryRow(ctx, `UPDATE repos SET config = $1, updated_at = $2 WHERE name = $3
			RETURNING id, format, kind`, blob(config), nanos(at), name).Scan(&id, &format, &kind)
		if errNoRows(err) {
			return meta.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, meta.EventRepoUpdated, name, repoEvent(id, format, kind), at)
		return err
	})
	if err != nil {
		return fmt.Errorf("update repository %q: %w", name, dbErr(err))
	}
	return nil
}

// DeleteRepo removes the repository with its packages, generations, sync
// records and snapshots (by foreign key cascade) and appends a repo.deleted
// event.
func (s *Store) DeleteRepo(ctx context.Context, name string) error {
	err := s.write(ctx, appending, func(tx pgx.Tx) error {
		var (
			id           int64
			format, kind string
		)
		err := tx.QueryRow(ctx, `DELETE FROM repos WHERE name = $1 RETURNING id, format, kind`,
			name).Scan(&id, &format, &kind)
		if errNoRows(err) {
			return meta.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, meta.EventRepoDeleted, name, repoEvent(id, format, kind), now())
		return err
	})
	if err != nil {
		return fmt.Errorf("delete repository %q: %w", name, dbErr(err))
	}
	return nil
}

// repoName returns the name of the repository id, or meta.ErrNotFound.
func repoName(ctx context.Context, tx pgx.Tx, id int64) (string, error) {
	var name string
	err := tx.QueryRow(ctx, `SELECT name FROM repos WHERE id = $1`, id).Scan(&name)
	if errNoRows(err) {
		return "", fmt.Errorf("repository %d: %w", id, meta.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("repository %d: %w", id, err)
	}
	return name, nil
}

func repoEvent(id int64, format, kind string) []byte {
	b, _ := json.Marshal(meta.RepoEventData{ID: id, Format: format, Kind: kind})
	return b
}

func scanRepo(sc scanner) (*meta.Repo, error) {
	var (
		r                meta.Repo
		created, updated int64
	)
	if err := sc.Scan(&r.ID, &r.Name, &r.Format, &r.Kind, &r.Config, &r.CurrentGeneration, &created, &updated); err != nil {
		return nil, err
	}
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &r, nil
}
