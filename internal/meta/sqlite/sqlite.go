// Package sqlite implements meta.Store on a SQLite database file, with the
// pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so a write is on disk
// when its method returns and survives kill -9 and power loss. All writes go
// through one connection whose transactions begin IMMEDIATE: writers are
// serialised, which is what makes event sequence numbers increase in commit
// order. Reads use a separate pool of read-only connections and see the
// latest committed state without waiting for writers.
//
// The schema lives in migrations/NNNN_name.sql, applied once each, in
// version order, each in its own transaction, and recorded in
// schema_migrations. Add a file to change the schema; never edit one that
// has been released. Times are stored as UTC unix nanoseconds, 0 meaning the
// zero time.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/meta"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ meta.Store = (*Store)(nil)

// Store is a meta.Store backed by a SQLite database file. It is safe for
// concurrent use, also by several processes sharing the file.
type Store struct {
	w *sql.DB // single writer connection, BEGIN IMMEDIATE
	r *sql.DB // read-only connections

	// Statements of the upload path, parsed once; transactions use them
	// through Tx.StmtContext.
	stmtRepoName, stmtInsertPackage, stmtInsertFragment, stmtInsertEvent, stmtSetAddedSeq, stmtPathConflict *sql.Stmt
	// The savepoint around each package of a batch.
	stmtSavepoint, stmtRelease, stmtRollbackTo *sql.Stmt
	// Reads made for every package of a mirror sync or upload, prepared
	// on the read pool (each connection parses them once, not per call).
	stmtLastSeq, stmtPackageByPath, stmtFindPackage *sql.Stmt

	// adds folds concurrent AddPackage calls into shared transactions.
	adds groupCommit
}

// Statements prepared by Open.
const (
	sqlRepoName = `SELECT name FROM repos WHERE id = $1`
	// added_seq is the sequence number the package's event, inserted
	// next in the same transaction, will get (events.seq is
	// AUTOINCREMENT: one past the largest ever used); addOne checks it.
	// Nothing is inserted when a live package has the path with other
	// bytes (sqlPathConflict) or the identity (the partial unique index);
	// addOne then finds which.
	sqlInsertPackage = `INSERT INTO packages (repo_id, scope, name, epoch, version, release, arch,
			path, digest, size, summary, uploaded_by, uploaded_at, added_seq, removed_seq)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
			COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + 1, 0
		WHERE NOT EXISTS (SELECT 1 FROM packages q
			WHERE q.repo_id = $1 AND q.removed_seq = 0 AND q.path = $8 AND q.digest <> $9)
		ON CONFLICT DO NOTHING RETURNING id, added_seq`
	sqlInsertFragment = `INSERT INTO package_fragments (package_id, kind, data) VALUES ($1, $2, $3)`
	sqlInsertEvent    = `INSERT INTO events (type, repo, data, time) VALUES ($1, $2, $3, $4) RETURNING seq`
	sqlSetAddedSeq    = `UPDATE packages SET added_seq = $1 WHERE id = $2`
)

// Open opens or creates the database file (a file name, not a URI: other
// processes must be able to open the same file), applies the migrations it
// has not applied yet and returns the store.
func Open(ctx context.Context, file string) (*Store, error) {
	if file == "" || strings.ContainsRune(file, '?') || strings.HasPrefix(file, "file:") || file == ":memory:" {
		return nil, fmt.Errorf("open metadata database %q: want a plain file name without '?'", file)
	}
	const common = "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	w, err := sql.Open("sqlite", file+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open metadata database %s: %w", file, err)
	}
	// One writer: SQLite allows one write transaction at a time anyway,
	// queueing in database/sql is cheaper than spinning on SQLITE_BUSY, and
	// BEGIN IMMEDIATE keeps another process's writes out of the middle.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open metadata database %s: %w", file, err)
	}
	for _, st := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.stmtRepoName, sqlRepoName},
		{&s.stmtInsertPackage, sqlInsertPackage},
		{&s.stmtInsertFragment, sqlInsertFragment},
		{&s.stmtInsertEvent, sqlInsertEvent},
		{&s.stmtSetAddedSeq, sqlSetAddedSeq},
		{&s.stmtPathConflict, sqlPathConflict},
		{&s.stmtSavepoint, `SAVEPOINT add_package`},
		{&s.stmtRelease, `RELEASE add_package`},
		{&s.stmtRollbackTo, `ROLLBACK TO add_package`},
	} {
		if *st.dst, err = w.PrepareContext(ctx, st.query); err != nil {
			w.Close()
			return nil, fmt.Errorf("open metadata database %s: prepare: %w", file, err)
		}
	}
	// Readers map the file rather than copying pages through read(2):
	// LivePackages reads whole repositories.
	r, err := sql.Open("sqlite", file+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open metadata database %s for reading: %w", file, err)
	}
	// As many idle connections as open ones: with fewer, a burst of
	// concurrent reads (every client of a proxy or an edge fleet asking
	// at once) closes and reopens connections, each an open(2), a
	// schema read and the pragmas, for nothing.
	readers := max(16, 4*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(5 * time.Minute)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open metadata database %s for reading: %w", file, err)
	}
	for _, st := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.stmtLastSeq, sqlLastSeq},
		{&s.stmtPackageByPath, sqlPackageByPath},
		{&s.stmtFindPackage, sqlFindPackage},
	} {
		if *st.dst, err = r.PrepareContext(ctx, st.query); err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("open metadata database %s: prepare: %w", file, err)
		}
	}
	s.r = r
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	errs := []error{s.r.Close()}
	for _, st := range []*sql.Stmt{s.stmtRepoName, s.stmtInsertPackage, s.stmtInsertFragment, s.stmtInsertEvent, s.stmtSetAddedSeq,
		s.stmtPathConflict, s.stmtLastSeq, s.stmtPackageByPath, s.stmtFindPackage, s.stmtSavepoint, s.stmtRelease, s.stmtRollbackTo} {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.w.Close())...)
}

// migrate applies, in order and each in its own transaction, the files of
// migrations/ whose version (the number their name starts with) is not in
// schema_migrations yet.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	type migration struct {
		version int64
		name    string
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("migration %s: name must start with a positive version number", base)
		}
		ms = append(ms, migration{v, name})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	for _, m := range ms {
		body, err := migrations.ReadFile(m.name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.name, err)
		}
		// The version check runs inside the write transaction, so two
		// processes opening a new database at once apply each file once.
		err = s.write(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx,
				`SELECT count(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
				m.version, nanos(now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// write runs fn in a write transaction and commits it if fn succeeds.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// appendEvent inserts an event in tx and returns its sequence number.
func (s *Store) appendEvent(ctx context.Context, tx *sql.Tx, typ, repo string, data []byte, at time.Time) (int64, error) {
	var seq int64
	err := tx.StmtContext(ctx, s.stmtInsertEvent).QueryRowContext(ctx, typ, repo, data, nanos(at)).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("append %s event: %w", typ, err)
	}
	return seq, nil
}

// now returns the current time in UTC without its monotonic reading, so that
// a time returned to the caller equals the one read back later.
func now() time.Time {
	return time.Now().UTC().Round(0)
}

// nanos converts t to its stored form.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos converts a stored time back.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// blob returns b, or an empty slice for nil: the driver binds nil as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
