package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/packyard/packyard/internal/meta"
)

// CreateSnapshot names a retained generation of a repository.
func (s *Store) CreateSnapshot(ctx context.Context, sn *meta.Snapshot) error {
	if sn.Name == "" {
		return fmt.Errorf("create snapshot of repository %d: the name is empty", sn.RepoID)
	}
	at := now()
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := s.repoName(ctx, tx, sn.RepoID); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM generations WHERE repo_id = $1 AND number = $2`,
			sn.RepoID, sn.Generation).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("generation %d: %w", sn.Generation, meta.ErrNotFound)
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO snapshots (repo_id, name, generation, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, sn.RepoID, sn.Name, sn.Generation, nanos(at))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = meta.ErrExists
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create snapshot %q of repository %d: %w", sn.Name, sn.RepoID, err)
	}
	sn.CreatedAt = at
	return nil
}

// GetSnapshot returns a repository's snapshot by name.
func (s *Store) GetSnapshot(ctx context.Context, repoID int64, name string) (*meta.Snapshot, error) {
	sn, err := scanSnapshot(s.r.QueryRowContext(ctx, `SELECT repo_id, name, generation, created_at FROM snapshots
		WHERE repo_id = $1 AND name = $2`, repoID, name))
	if errors.Is(err, sql.ErrNoRows) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %q of repository %d: %w", name, repoID, err)
	}
	return sn, nil
}

// ListSnapshots returns a repository's snapshots ordered by name.
func (s *Store) ListSnapshots(ctx context.Context, repoID int64) ([]meta.Snapshot, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT repo_id, name, generation, created_at FROM snapshots
		WHERE repo_id = $1 ORDER BY name`, repoID)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of repository %d: %w", repoID, err)
	}
	defer rows.Close()
	var out []meta.Snapshot
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			return nil, fmt.Errorf("list snapshots of repository %d: %w", repoID, err)
		}
		out = append(out, *sn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots of repository %d: %w", repoID, err)
	}
	return out, nil
}

// DeleteSnapshot removes a snapshot; its generation becomes prunable.
func (s *Store) DeleteSnapshot(ctx context.Context, repoID int64, name string) error {
	if err := s.execOne(ctx, `DELETE FROM snapshots WHERE repo_id = $1 AND name = $2`, repoID, name); err != nil {
		return fmt.Errorf("delete snapshot %q of repository %d: %w", name, repoID, err)
	}
	return nil
}

func scanSnapshot(sc scanner) (*meta.Snapshot, error) {
	var (
		sn      meta.Snapshot
		created int64
	)
	if err := sc.Scan(&sn.RepoID, &sn.Name, &sn.Generation, &created); err != nil {
		return nil, err
	}
	sn.CreatedAt = fromNanos(created)
	return &sn, nil
}
