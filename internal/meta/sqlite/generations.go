package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// Publish stores g as the repository's next generation and makes it current
// if the current generation is still prev.
func (s *Store) Publish(ctx context.Context, g *meta.Generation, prev int64) (int64, error) {
	at := now()
	number := prev + 1
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var repo string
		err := tx.QueryRowContext(ctx, `UPDATE repos SET current_generation = $1
			WHERE id = $2 AND current_generation = $3 RETURNING name`, number, g.RepoID, prev).Scan(&repo)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := s.repoName(ctx, tx, g.RepoID); err != nil {
				return err
			}
			return fmt.Errorf("generation %d is not current: %w", prev, meta.ErrStale)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO generations (repo_id, number, seq, created_at)
			VALUES ($1, $2, $3, $4)`, g.RepoID, number, g.Seq, nanos(at)); err != nil {
			return fmt.Errorf("insert generation %d: %w", number, err)
		}
		if err := insertGenFiles(ctx, tx, g.RepoID, number, g.Files); err != nil {
			return fmt.Errorf("insert files of generation %d: %w", number, err)
		}
		data, _ := json.Marshal(meta.GenerationEventData{Number: number, Seq: g.Seq})
		seq, err = s.appendEvent(ctx, tx, meta.EventGenerationPublic, repo, data, at)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("publish generation of repository %d: %w", g.RepoID, err)
	}
	g.Number, g.CreatedAt = number, at
	return seq, nil
}

// genFilesPerInsert bounds the rows of one INSERT: 5 parameters each, well
// under SQLite's and PostgreSQL's parameter limits.
const genFilesPerInsert = 500

// insertGenFiles inserts files with a few multi-row statements.
func insertGenFiles(ctx context.Context, tx *sql.Tx, repoID, number int64, files []meta.GenFile) error {
	for len(files) > 0 {
		n := min(len(files), genFilesPerInsert)
		var stmt []byte
		stmt = append(stmt, `INSERT INTO generation_files (repo_id, number, path, digest, size, content_type, parts) VALUES `...)
		args := make([]any, 0, 2+5*n)
		args = append(args, repoID, number)
		for i, f := range files[:n] {
			if i > 0 {
				stmt = append(stmt, ", "...)
			}
			k := len(args)
			stmt = fmt.Appendf(stmt, "($1, $2, $%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5)
			args = append(args, f.Path, f.Digest, f.Size, f.ContentType, strings.Join(f.Parts, ""))
		}
		if _, err := tx.ExecContext(ctx, string(stmt), args...); err != nil {
			return err
		}
		files = files[n:]
	}
	return nil
}

// GetGeneration returns a generation with its files, ordered by path.
func (s *Store) GetGeneration(ctx context.Context, repoID, number int64) (*meta.Generation, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("get generation %d of repository %d: %w", number, repoID, err)
	}
	defer tx.Rollback() // read-only: nothing to keep
	g := meta.Generation{RepoID: repoID, Number: number}
	var created int64
	err = tx.QueryRowContext(ctx, `SELECT seq, created_at FROM generations WHERE repo_id = $1 AND number = $2`,
		repoID, number).Scan(&g.Seq, &created)
	if errors.Is(err, sql.ErrNoRows) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get generation %d of repository %d: %w", number, repoID, err)
	}
	g.CreatedAt = fromNanos(created)
	rows, err := tx.QueryContext(ctx, `SELECT path, digest, size, content_type, parts FROM generation_files
		WHERE repo_id = $1 AND number = $2 ORDER BY path`, repoID, number)
	if err != nil {
		return nil, fmt.Errorf("get files of generation %d of repository %d: %w", number, repoID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var f meta.GenFile
		var parts string
		if err := rows.Scan(&f.Path, &f.Digest, &f.Size, &f.ContentType, &parts); err != nil {
			return nil, fmt.Errorf("get files of generation %d of repository %d: %w", number, repoID, err)
		}
		f.Parts = splitParts(parts)
		g.Files = append(g.Files, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get files of generation %d of repository %d: %w", number, repoID, err)
	}
	return &g, nil
}

// ListGenerations returns a repository's retained generations, newest first,
// without files.
func (s *Store) ListGenerations(ctx context.Context, repoID int64) ([]meta.Generation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT number, seq, created_at FROM generations
		WHERE repo_id = $1 ORDER BY number DESC`, repoID)
	if err != nil {
		return nil, fmt.Errorf("list generations of repository %d: %w", repoID, err)
	}
	defer rows.Close()
	var out []meta.Generation
	for rows.Next() {
		g := meta.Generation{RepoID: repoID}
		var created int64
		if err := rows.Scan(&g.Number, &g.Seq, &created); err != nil {
			return nil, fmt.Errorf("list generations of repository %d: %w", repoID, err)
		}
		g.CreatedAt = fromNanos(created)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list generations of repository %d: %w", repoID, err)
	}
	return out, nil
}

// PruneGenerations deletes the generations older than before, except the
// newest keep ones, the current one and those a snapshot names, and returns
// their numbers in ascending order. Packages are never purged (a removed
// one keeps its row), so a snapshot's generation keeps its files and the
// packages live at its Seq.
func (s *Store) PruneGenerations(ctx context.Context, repoID int64, before time.Time, keep int) ([]int64, error) {
	var deleted []int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM generations
			WHERE repo_id = $1 AND created_at < $2
				AND number <> (SELECT current_generation FROM repos WHERE id = $1)
				AND number NOT IN (SELECT number FROM generations WHERE repo_id = $1 ORDER BY number DESC LIMIT $3)
				AND number NOT IN (SELECT generation FROM snapshots WHERE repo_id = $1)
			RETURNING number`, repoID, nanos(before), max(keep, 0))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n int64
			if err := rows.Scan(&n); err != nil {
				return err
			}
			deleted = append(deleted, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("prune generations of repository %d: %w", repoID, err)
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
	var f meta.GenFile
	var parts string
	var number int64
	err := s.r.QueryRowContext(ctx, `SELECT number, path, digest, size, content_type, parts FROM generation_files
		WHERE repo_id = $1 AND path = $2 ORDER BY number DESC LIMIT 1`, repoID, path).
		Scan(&number, &f.Path, &f.Digest, &f.Size, &f.ContentType, &parts)
	if errors.Is(err, sql.ErrNoRows) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("file %s of repository %d: %w", path, repoID, err)
	}
	f.Parts = splitParts(parts)
	return &f, number, nil
}
