package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

// Publish stores g as the repository's next generation and makes it current
// if the current generation is still prev.
func (s *Store) Publish(ctx context.Context, g *meta.Generation, prev int64) (int64, error) {
	number := prev + 1
	var (
		seq int64
		at  time.Time
	)
	err := s.write(ctx, appending, func(tx pgx.Tx) error {
		at = now()
		var repo string
		err := tx.QueryRow(ctx, `UPDATE repos SET current_generation = $1
			WHERE id = $2 AND current_generation = $3 RETURNING name`, number, g.RepoID, prev).Scan(&repo)
		if errNoRows(err) {
			if _, err := repoName(ctx, tx, g.RepoID); err != nil {
				return err
			}
			return fmt.Errorf("generation %d is not current: %w", prev, meta.ErrStale)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO generations (repo_id, number, seq, created_at)
			VALUES ($1, $2, $3, $4)`, g.RepoID, number, g.Seq, nanos(at)); err != nil {
			return fmt.Errorf("insert generation %d: %w", number, err)
		}
		if err := insertGenFiles(ctx, tx, g.RepoID, number, g.Files); err != nil {
			return fmt.Errorf("insert files of generation %d: %w", number, err)
		}
		data, _ := json.Marshal(meta.GenerationEventData{Number: number, Seq: g.Seq})
		seq, err = appendEvent(ctx, tx, meta.EventGenerationPublic, repo, data, at)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("publish generation of repository %d: %w", g.RepoID, dbErr(err))
	}
	g.Number, g.CreatedAt = number, at
	return seq, nil
}

// insertGenFiles inserts files with one statement, whatever their number:
// each column travels as an array.
func insertGenFiles(ctx context.Context, tx pgx.Tx, repoID, number int64, files []meta.GenFile) error {
	if len(files) == 0 {
		return nil
	}
	paths := make([]string, len(files))
	digests := make([]string, len(files))
	sizes := make([]int64, len(files))
	types := make([]string, len(files))
	parts := make([]string, len(files))
	for i, f := range files {
		paths[i], digests[i], sizes[i], types[i], parts[i] = f.Path, f.Digest, f.Size, f.ContentType, strings.Join(f.Parts, "")
	}
	_, err := tx.Exec(ctx, `INSERT INTO generation_files (repo_id, number, path, digest, size, content_type, parts)
		SELECT $1::bigint, $2::bigint, f.* FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])
			AS f (path, digest, size, content_type, parts)`,
		repoID, number, paths, digests, sizes, types, parts)
	return err
}

// GetGeneration returns a generation with its files, ordered by path.
func (s *Store) GetGeneration(ctx context.Context, repoID, number int64) (*meta.Generation, error) {
	var g *meta.Generation
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		g = &meta.Generation{RepoID: repoID, Number: number}
		var created int64
		err := tx.QueryRow(ctx, `SELECT seq, created_at FROM generations WHERE repo_id = $1 AND number = $2`,
			repoID, number).Scan(&g.Seq, &created)
		if errNoRows(err) {
			return meta.ErrNotFound
		}
		if err != nil {
			return err
		}
		g.CreatedAt = fromNanos(created)
		rows, err := tx.Query(ctx, `SELECT path, digest, size, content_type, parts FROM generation_files
			WHERE repo_id = $1 AND number = $2 ORDER BY path`, repoID, number)
		if err != nil {
			return fmt.Errorf("files: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var f meta.GenFile
			var parts string
			if err := rows.Scan(&f.Path, &f.Digest, &f.Size, &f.ContentType, &parts); err != nil {
				return fmt.Errorf("files: %w", err)
			}
			f.Parts = splitParts(parts)
			g.Files = append(g.Files, f)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("get generation %d of repository %d: %w", number, repoID, dbErr(err))
	}
	return g, nil
}

// ListGenerations returns a repository's retained generations, newest first,
// without files.
func (s *Store) ListGenerations(ctx context.Context, repoID int64) ([]meta.Generation, error) {
	var out []meta.Generation
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, `SELECT number, seq, created_at FROM generations
			WHERE repo_id = $1 ORDER BY number DESC`, repoID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			g := meta.Generation{RepoID: repoID}
			var created int64
			if err := rows.Scan(&g.Number, &g.Seq, &created); err != nil {
				return err
			}
			g.CreatedAt = fromNanos(created)
			out = append(out, g)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list generations of repository %d: %w", repoID, dbErr(err))
	}
	return out, nil
}

// PruneGenerations deletes the generations older than before, except the
// newest keep ones, the current one and those a snapshot names, and returns
// their numbers in ascending order. Packages are never purged (a removed
// one keeps its row), so a snapshot's generation keeps its files and the
// packages live at its Seq. It takes the write lock, though it appends no
// event, so that it never meets a concurrent DeleteRepo, Publish or
// CreateSnapshot halfway.
func (s *Store) PruneGenerations(ctx context.Context, repoID int64, before time.Time, keep int) ([]int64, error) {
	var deleted []int64
	err := s.write(ctx, locked, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM generations
			WHERE repo_id = $1 AND created_at < $2
				AND number <> (SELECT current_generation FROM repos WHERE id = $1)
				AND number NOT IN (SELECT number FROM generations WHERE repo_id = $1 ORDER BY number DESC LIMIT $3)
				AND number NOT IN (SELECT generation FROM snapshots WHERE repo_id = $1)
			RETURNING number`, repoID, nanos(before), max(keep, 0))
		if err != nil {
			return err
		}
		deleted, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prune generations of repository %d: %w", repoID, dbErr(err))
	}
	slices.Sort(deleted)
	return deleted, nil
}

// splitParts splits concatenated 64-character hex digests.
func splitParts(s string) []string {
	if s == "" {
		return nil
	}
	out := make([]string, 0, len(s)/64)
	for len(s) >= 64 {
		out = append(out, s[:64])
		s = s[64:]
	}
	return out
}

// GenerationFile returns the file at path in the newest retained generation
// that has one.
func (s *Store) GenerationFile(ctx context.Context, repoID int64, path string) (*meta.GenFile, int64, error) {
	var (
		f      meta.GenFile
		parts  string
		number int64
	)
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT number, path, digest, size, content_type, parts FROM generation_files
			WHERE repo_id = $1 AND path = $2 ORDER BY number DESC LIMIT 1`, repoID, path).
			Scan(&number, &f.Path, &f.Digest, &f.Size, &f.ContentType, &parts)
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("file %s of repository %d: %w", path, repoID, dbErr(err))
	}
	f.Parts = splitParts(parts)
	return &f, number, nil
}
