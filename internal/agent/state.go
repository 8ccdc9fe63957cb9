package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// state is the agent's own database: where it is in the change feed, the
// generation it serves of each repository, and every file it manages.
//
//	kv(key, value)                 last_seq, full_passes
//	repos(name, generation, seq, synced_at)
//	files(path, repo, digest, size, mtime, retired_at)
//
// files.path is relative to root_dir ("<repo>/<path>"); retired_at is 0
// for a file of the served generation, else when it left it (it is deleted
// once the grace period has passed).
type state struct {
	db   *sql.DB
	lock *os.File
}

const stateSchema = `
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
	name       TEXT PRIMARY KEY,
	generation INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	synced_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
	path       TEXT PRIMARY KEY,
	repo       TEXT NOT NULL,
	digest     TEXT NOT NULL,
	size       INTEGER NOT NULL,
	mtime      INTEGER NOT NULL,
	retired_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_repo ON files (repo);
CREATE INDEX IF NOT EXISTS files_retired ON files (retired_at) WHERE retired_at != 0;
`

func openState(ctx context.Context, file string) (*state, error) {
	if file == "" || strings.ContainsAny(file, "?") || strings.HasPrefix(file, "file:") {
		return nil, fmt.Errorf("state_db %q: want a plain file name", file)
	}
	// Two agents on one state (and so one tree) would undo each other.
	lock, err := os.OpenFile(file+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state_db lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("state_db %s is in use by another packyard agent: %w", file, err)
	}
	db, err := sql.Open("sqlite", file+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open state_db %s: %w", file, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, stateSchema); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("open state_db %s: %w", file, err)
	}
	return &state{db: db, lock: lock}, nil
}

func (s *state) close() error {
	err := s.db.Close()
	s.lock.Close()
	return err
}

func (s *state) getInt(ctx context.Context, key string) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func (s *state) setInt(ctx context.Context, key string, v int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, v)
	return err
}

// repoState is the served generation of a repository.
type repoState struct {
	Generation int64
	Seq        int64
	SyncedAt   time.Time
}

func (s *state) repos(ctx context.Context) (map[string]repoState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, generation, seq, synced_at FROM repos`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]repoState{}
	for rows.Next() {
		var name string
		var rs repoState
		var at int64
		if err := rows.Scan(&name, &rs.Generation, &rs.Seq, &at); err != nil {
			return nil, err
		}
		rs.SyncedAt = time.Unix(0, at)
		out[name] = rs
	}
	return out, rows.Err()
}

// fileRow is one managed file.
type fileRow struct {
	Path      string // relative to root_dir
	Repo      string
	Digest    string
	Size      int64
	MTime     int64 // UnixNano when written or verified
	RetiredAt int64 // UnixNano, 0 while in the served generation
}

// files returns the managed files of a repository ("" for all), by path.
func (s *state) files(ctx context.Context, repoName string) (map[string]fileRow, error) {
	q, args := `SELECT path, repo, digest, size, mtime, retired_at FROM files`, []any{}
	if repoName != "" {
		q, args = q+` WHERE repo = $1`, []any{repoName}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]fileRow{}
	for rows.Next() {
		var f fileRow
		if err := rows.Scan(&f.Path, &f.Repo, &f.Digest, &f.Size, &f.MTime, &f.RetiredAt); err != nil {
			return nil, err
		}
		out[f.Path] = f
	}
	return out, rows.Err()
}

// retired returns the paths of the files that left the served generation
// at or before t.
func (s *state) retired(ctx context.Context, t time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT path FROM files WHERE retired_at != 0 AND retired_at <= $1`, t.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// commit records, in one transaction, the files written or verified (put),
// the files that left the served generation (retire, at now), the files
// deleted (drop) and, when rs is not nil, the repository's new position.
func (s *state) commit(ctx context.Context, repoName string, rs *repoState, put []fileRow, retire, drop []string, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if len(put) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO files (path, repo, digest, size, mtime, retired_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (path) DO UPDATE SET repo = excluded.repo, digest = excluded.digest, size = excluded.size,
			mtime = excluded.mtime, retired_at = excluded.retired_at`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, f := range put {
			if _, err := st.ExecContext(ctx, f.Path, f.Repo, f.Digest, f.Size, f.MTime, f.RetiredAt); err != nil {
				return err
			}
		}
	}
	for _, p := range retire {
		if _, err := tx.ExecContext(ctx, `UPDATE files SET retired_at = $1 WHERE path = $2 AND retired_at = 0`, now.UnixNano(), p); err != nil {
			return err
		}
	}
	for _, p := range drop {
		if _, err := tx.ExecContext(ctx, `DELETE FROM files WHERE path = $1`, p); err != nil {
			return err
		}
	}
	if rs != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO repos (name, generation, seq, synced_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, seq = excluded.seq, synced_at = excluded.synced_at`,
			repoName, rs.Generation, rs.Seq, rs.SyncedAt.UnixNano()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// forgetRepo removes a repository's position (it was deleted at the
// origin or is no longer followed) and retires its files.
func (s *state) forgetRepo(ctx context.Context, repoName string, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if _, err := tx.ExecContext(ctx, `DELETE FROM repos WHERE name = $1`, repoName); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE files SET retired_at = $1 WHERE repo = $2 AND retired_at = 0`, now.UnixNano(), repoName); err != nil {
		return err
	}
	return tx.Commit()
}
