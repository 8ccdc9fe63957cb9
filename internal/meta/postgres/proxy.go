package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

const proxyColumns = `repo_id, path, digest, size, content_type, etag, last_modified, source, fetched_at, used_at, fragments`

// PutProxyFiles records files of a proxy repository's cache in one
// transaction.
func (s *Store) PutProxyFiles(ctx context.Context, repoID int64, files []meta.ProxyFile) error {
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM repos WHERE id = $1 FOR SHARE`, repoID).Scan(&one); err != nil {
			if errNoRows(err) {
				return meta.ErrNotFound
			}
			return err
		}
		for _, f := range files {
			_, err := tx.Exec(ctx, `INSERT INTO proxy_files (`+proxyColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (repo_id, path) DO UPDATE SET digest = excluded.digest, size = excluded.size,
					content_type = excluded.content_type, etag = excluded.etag,
					last_modified = excluded.last_modified, source = excluded.source,
					fetched_at = excluded.fetched_at, used_at = excluded.used_at, fragments = excluded.fragments`,
				repoID, f.Path, f.Digest, f.Size, f.ContentType, f.ETag, f.LastModified, f.Source,
				nanos(f.FetchedAt), nanos(f.UsedAt), f.Fragments)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record cached files of repository %d: %w", repoID, dbErr(err))
	}
	return nil
}

// GetProxyFile returns the cache record at path.
func (s *Store) GetProxyFile(ctx context.Context, repoID int64, path string) (*meta.ProxyFile, error) {
	var f *meta.ProxyFile
	err := s.read(ctx, func() (err error) {
		f, err = scanProxyFile(s.pool.QueryRow(ctx, `SELECT `+proxyColumns+` FROM proxy_files
			WHERE repo_id = $1 AND path = $2`, repoID, path))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cached file %s of repository %d: %w", path, repoID, dbErr(err))
	}
	return f, nil
}

// TouchProxyFile moves a record's FetchedAt and UsedAt.
func (s *Store) TouchProxyFile(ctx context.Context, repoID int64, path string, fetched, used time.Time) error {
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE proxy_files SET
			fetched_at = CASE WHEN $3::BIGINT = 0 THEN fetched_at ELSE $3::BIGINT END,
			used_at = CASE WHEN $4::BIGINT = 0 THEN used_at ELSE $4::BIGINT END
			WHERE repo_id = $1 AND path = $2`, repoID, path, nanos(fetched), nanos(used))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return meta.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch cached file %s of repository %d: %w", path, repoID, dbErr(err))
	}
	return nil
}

// ListProxyFiles calls fn for every cache record of a repository, by path.
func (s *Store) ListProxyFiles(ctx context.Context, repoID int64, fn func(*meta.ProxyFile) error) error {
	var out []*meta.ProxyFile
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT `+proxyColumns+` FROM proxy_files WHERE repo_id = $1 ORDER BY path`, repoID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			f, err := scanProxyFile(rows)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("list cached files of repository %d: %w", repoID, dbErr(err))
	}
	for _, f := range out {
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// DeleteProxyFile removes a cache record.
func (s *Store) DeleteProxyFile(ctx context.Context, repoID int64, path string) error {
	err := s.write(ctx, plain, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM proxy_files WHERE repo_id = $1 AND path = $2`, repoID, path)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return meta.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete cached file %s of repository %d: %w", path, repoID, dbErr(err))
	}
	return nil
}

func scanProxyFile(row scanner) (*meta.ProxyFile, error) {
	var (
		f             meta.ProxyFile
		fetched, used int64
	)
	if err := row.Scan(&f.RepoID, &f.Path, &f.Digest, &f.Size, &f.ContentType, &f.ETag, &f.LastModified,
		&f.Source, &fetched, &used, &f.Fragments); err != nil {
		return nil, err
	}
	f.FetchedAt, f.UsedAt = fromNanos(fetched), fromNanos(used)
	return &f, nil
}
