package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

// Sync records, like edge reports, are not part of the change feed: their
// statements do not take the write lock.

const syncColumns = `id, repo_id, started_at, finished_at, status, error, seq, generation, stats`

// PutSync inserts a sync record (s.ID == 0) or replaces one of the
// repository's.
func (s *Store) PutSync(ctx context.Context, ms *meta.MirrorSync) error {
	if err := checkSyncStatus(ms.Status); err != nil {
		return fmt.Errorf("record sync of repository %d: %w", ms.RepoID, err)
	}
	var id int64
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		id = ms.ID
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM repos WHERE id = $1 FOR SHARE`, ms.RepoID).Scan(&one); err != nil {
			if errNoRows(err) {
				return meta.ErrNotFound
			}
			return err
		}
		args := []any{ms.RepoID, nanos(ms.StartedAt), nanos(ms.FinishedAt), ms.Status, ms.Error,
			ms.Seq, ms.Generation, blob(ms.Stats)}
		if ms.ID == 0 {
			return tx.QueryRow(ctx, `INSERT INTO mirror_syncs
				(repo_id, started_at, finished_at, status, error, seq, generation, stats)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, args...).Scan(&id)
		}
		tag, err := tx.Exec(ctx, `UPDATE mirror_syncs SET started_at = $2, finished_at = $3,
			status = $4, error = $5, seq = $6, generation = $7, stats = $8
			WHERE repo_id = $1 AND id = $9`, append(args, ms.ID)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("sync %d: %w", ms.ID, meta.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record sync of repository %d: %w", ms.RepoID, dbErr(err))
	}
	ms.ID = id
	return nil
}

// ListSyncs returns up to limit (0: all) of a repository's sync records,
// newest first.
func (s *Store) ListSyncs(ctx context.Context, repoID int64, limit int) ([]meta.MirrorSync, error) {
	q := `SELECT ` + syncColumns + ` FROM mirror_syncs WHERE repo_id = $1 ORDER BY id DESC`
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	var out []meta.MirrorSync
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, q, repoID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			ms, err := scanSync(rows)
			if err != nil {
				return err
			}
			out = append(out, *ms)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list syncs of repository %d: %w", repoID, dbErr(err))
	}
	return out, nil
}

// PruneSyncs deletes the repository's sync records but the newest keep,
// the running ones and the newest ok one.
func (s *Store) PruneSyncs(ctx context.Context, repoID int64, keep int) (int, error) {
	if keep < 1 {
		return 0, fmt.Errorf("prune syncs of repository %d: keep %d: at least one record is kept", repoID, keep)
	}
	var n int64
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM mirror_syncs WHERE repo_id = $1 AND status <> $3
			AND id < (SELECT id FROM mirror_syncs WHERE repo_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)
			AND id <> COALESCE((SELECT MAX(id) FROM mirror_syncs WHERE repo_id = $1 AND status = $4), 0)`, repoID, keep-1, meta.SyncRunning, meta.SyncOK)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune syncs of repository %d: %w", repoID, dbErr(err))
	}
	return int(n), nil
}

// LastGoodSync returns the repository's newest ok sync record.
func (s *Store) LastGoodSync(ctx context.Context, repoID int64) (*meta.MirrorSync, error) {
	var ms *meta.MirrorSync
	err := s.read(ctx, func() (err error) {
		ms, err = scanSync(s.pool.QueryRow(ctx, `SELECT `+syncColumns+` FROM mirror_syncs
			WHERE repo_id = $1 AND status = $2 ORDER BY id DESC LIMIT 1`, repoID, meta.SyncOK))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("last good sync of repository %d: %w", repoID, dbErr(err))
	}
	return ms, nil
}

// checkSyncStatus refuses a status that is not one of meta's.
func checkSyncStatus(status string) error {
	switch status {
	case meta.SyncRunning, meta.SyncOK, meta.SyncFailed:
		return nil
	}
	return fmt.Errorf("unknown sync status %q", status)
}

func scanSync(sc scanner) (*meta.MirrorSync, error) {
	var (
		ms                meta.MirrorSync
		started, finished int64
	)
	if err := sc.Scan(&ms.ID, &ms.RepoID, &started, &finished, &ms.Status, &ms.Error,
		&ms.Seq, &ms.Generation, &ms.Stats); err != nil {
		return nil, err
	}
	ms.StartedAt, ms.FinishedAt = fromNanos(started), fromNanos(finished)
	return &ms, nil
}
