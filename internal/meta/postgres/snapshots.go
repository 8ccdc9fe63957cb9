package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

// CreateSnapshot names a retained generation of a repository. It takes the
// write lock, so that it never meets a concurrent PruneGenerations of that
// generation halfway (the foreign key would refuse the snapshot then, but
// with a less telling error).
func (s *Store) CreateSnapshot(ctx context.Context, sn *meta.Snapshot) error {
	if sn.Name == "" {
		return fmt.Errorf("create snapshot of repository %d: the name is empty", sn.RepoID)
	}
	var at time.Time
	err := s.write(ctx, locked, func(tx pgx.Tx) error {
		at = now()
		if _, err := repoName(ctx, tx, sn.RepoID); err != nil {
			return err
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM generations WHERE repo_id = $1 AND number = $2`,
			sn.RepoID, sn.Generation).Scan(&one)
		if errNoRows(err) {
			return fmt.Errorf("generation %d: %w", sn.Generation, meta.ErrNotFound)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO snapshots (repo_id, name, generation, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, sn.RepoID, sn.Name, sn.Generation, nanos(at))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return meta.ErrExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create snapshot %q of repository %d: %w", sn.Name, sn.RepoID, dbErr(err))
	}
	sn.CreatedAt = at
	return nil
}

// GetSnapshot returns a repository's snapshot by name.
func (s *Store) GetSnapshot(ctx context.Context, repoID int64, name string) (*meta.Snapshot, error) {
	var sn *meta.Snapshot
	err := s.read(ctx, func() (err error) {
		sn, err = scanSnapshot(s.pool.QueryRow(ctx, `SELECT repo_id, name, generation, created_at FROM snapshots
			WHERE repo_id = $1 AND name = $2`, repoID, name))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %q of repository %d: %w", name, repoID, dbErr(err))
	}
	return sn, nil
}

// ListSnapshots returns a repository's snapshots ordered by name.
func (s *Store) ListSnapshots(ctx context.Context, repoID int64) ([]meta.Snapshot, error) {
	var out []meta.Snapshot
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT repo_id, name, generation, created_at FROM snapshots
			WHERE repo_id = $1 ORDER BY name`, repoID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sn, err := scanSnapshot(rows)
			if err != nil {
				return err
			}
			out = append(out, *sn)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots of repository %d: %w", repoID, dbErr(err))
	}
	return out, nil
}

// DeleteSnapshot removes a snapshot; its generation becomes prunable.
func (s *Store) DeleteSnapshot(ctx context.Context, repoID int64, name string) error {
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM snapshots WHERE repo_id = $1 AND name = $2`, repoID, name)
		if err == nil && tag.RowsAffected() == 0 {
			err = meta.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete snapshot %q of repository %d: %w", name, repoID, dbErr(err))
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
