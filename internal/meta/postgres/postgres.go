// Package postgres implements meta.Store on PostgreSQL, with the driver
// github.com/jackc/pgx/v5, for installations where several packyard
// processes, on one machine or many, share the metadata.
//
// The tables and columns are those of the SQLite store (package
// internal/meta/sqlite), with the same meaning and encoding: times are UTC
// unix nanoseconds in BIGINT columns (0 for the zero time), blobs BYTEA,
// everything else TEXT. Rows therefore copy table by table between the two;
// after such a copy, ResetSequences moves the identity sequences past the
// copied ids.
//
// The schema lives in migrations/NNNN_name.sql; migration N makes the same
// change as the SQLite store's migration N. Open applies the ones missing
// from schema_migrations, in order, each in its own transaction, while
// holding an advisory lock, so that processes starting together apply each
// migration once. Add a file to change the schema; never edit one that has
// been released.
//
// # Ordering and locks
//
// PostgreSQL hands out sequence values when a transaction asks, not when it
// commits, so concurrent transactions would make events visible out of
// sequence order. Every transaction that writes anything but tokens
// therefore first takes one transaction-level advisory lock (the write
// lock), which serialises writers across every process and makes sequence
// order commit order, as SQLite's single writer does. The keys of the
// advisory locks the store takes are (class, id) pairs in classes of their
// own, see lockClassMigrate, lockClassWrite and lockClassPublish.
//
// Every event-appending transaction also calls pg_notify on the channel
// packyard_events, which PostgreSQL delivers at commit to the connections
// that WatchEvents keeps listening.
//
// # Failures
//
// An error caused by a refused, lost or shut-down connection wraps
// meta.ErrUnavailable. A read that fails that way is tried once more on a
// fresh connection, as is a write transaction that failed before its
// COMMIT was sent; a failed COMMIT is not retried, since it may have taken
// effect.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/packyard/packyard/internal/meta"
)

//go:embed migrations/*.sql
var migrations embed.FS

var (
	_ meta.Store         = (*Store)(nil)
	_ meta.EventWatcher  = (*Store)(nil)
	_ meta.PublishLocker = (*Store)(nil)
	_ meta.SyncLocker    = (*Store)(nil)
)

// Advisory lock classes: the first key of the two-key advisory locks the
// store takes. The two-key form keeps them apart from single-key locks that
// other software sharing the database may take.
const (
	// lockClassMigrate, with id 0, is held (session level) while Open
	// applies migrations.
	lockClassMigrate int32 = 0x70796d00
	// lockClassWrite, with id 0, is the write lock, held (transaction
	// level) by every transaction that writes anything but tokens.
	lockClassWrite int32 = 0x70797700
	// lockClassPublish, with an id derived from the repository ID, is held
	// (session level) by LockPublish.
	lockClassPublish int32 = 0x70797000
	// lockClassSync, with an id derived from the repository ID, is held
	// (session level) by TryLockSync for the length of a mirror sync.
	lockClassSync int32 = 0x70797300
)

// notifyChannel is the channel of pg_notify that event-appending
// transactions signal on.
const notifyChannel = "packyard_events"

// Pool settings applied unless the DSN sets them (pool_max_conns,
// pool_health_check_period, connect_timeout).
const (
	defaultMaxConns          = 16
	defaultHealthCheckPeriod = 15 * time.Second
	defaultConnectTimeout    = 10 * time.Second
	pingTimeout              = 5 * time.Second
	// maxPublishLocks bounds the connections that hold publish locks;
	// they have a pool of their own so that publishers holding locks
	// cannot take every connection that their own work needs.
	maxPublishLocks = 32
)

// Store is a meta.Store backed by a PostgreSQL database. It is safe for
// concurrent use, also by several processes sharing the database.
type Store struct {
	pool  *pgxpool.Pool // every query
	locks *pgxpool.Pool // connections holding publish locks

	// adds folds concurrent AddPackage calls into shared transactions.
	adds groupCommit
	// watch fans notifications out to WatchEvents callers.
	watch watcher

	// closing ends when Close starts: LockPublish stops waiting then.
	closing     context.Context
	markClosing context.CancelFunc
	// held are the publish locks not yet released, which Close releases.
	heldMu sync.Mutex
	held   map[*pgxpool.Conn]bool
}

// Open connects to the database named by dsn (a URL or key=value
// connection string, as libpq takes; pool_max_conns and the other pgxpool
// settings may be added), applies the migrations it has not applied yet and
// returns the store.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open metadata database: %w", err)
	}
	cc := cfg.ConnConfig
	where := fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if !strings.Contains(dsn, "pool_health_check_period") {
		cfg.HealthCheckPeriod = defaultHealthCheckPeriod
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = pingTimeout
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "packyard"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open metadata database %s: %w", where, dbErr(err))
	}

	// A publish lock's wait is interrupted by a cancel request, so that
	// the server stops waiting too, instead of by closing the socket, which
	// a backend blocked on a lock does not notice.
	lcfg := cfg.Copy()
	lcfg.MaxConns = maxPublishLocks
	lcfg.MinConns, lcfg.MinIdleConns = 0, 0
	lcfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: pingTimeout}
	}
	locks, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open metadata database %s: %w", where, dbErr(err))
	}

	s := &Store{pool: pool, locks: locks, held: map[*pgxpool.Conn]bool{}}
	s.closing, s.markClosing = context.WithCancel(context.Background())
	s.watch.init(s)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open metadata database %s: %w", where, dbErr(err))
	}
	return s, nil
}

// Close stops the listeners of WatchEvents, closing their channels,
// interrupts LockPublish calls still waiting, releases the publish locks
// still held (their unlock functions then do nothing) and closes the
// connections, after waiting for the calls in progress to return theirs.
func (s *Store) Close() error {
	s.markClosing()
	s.heldMu.Lock()
	for c := range s.held {
		release(c, false)
	}
	clear(s.held)
	s.heldMu.Unlock()
	s.watch.close()
	s.pool.Close()
	s.locks.Close()
	return nil
}

// migration is one file of migrations/.
type migration struct {
	version int64
	name    string
}

// listMigrations returns the files of migrations/ in version order.
func listMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", base)
		}
		ms = append(ms, migration{v, name})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies, in order and each in its own transaction, the files of
// migrations/ whose version is not in schema_migrations yet. It holds the
// migration lock throughout, on one connection.
func (s *Store) migrate(ctx context.Context) (err error) {
	ms, err := listMigrations()
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() { release(conn, err == nil) }()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, 0)`, lockClassMigrate); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, 0)`, lockClassMigrate); uerr != nil && err == nil {
			err = fmt.Errorf("release the migration lock: %w", uerr)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for _, m := range ms {
		if slices.Contains(applied, m.version) {
			continue
		}
		body, err := migrations.ReadFile(m.name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
				m.version, nanos(now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// release returns a connection to its pool, or closes it first when it may
// be left in an unknown state (a failed statement, a lock it may still
// hold): a closed connection is dropped from the pool, and the server ends
// its session, releasing its locks.
func release(c *pgxpool.Conn, ok bool) {
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		_ = c.Conn().Close(ctx) // closed either way
		cancel()
	}
	c.Release()
}

// sequences lists the identity sequences of the schema, with the column
// each numbers.
var sequences = []struct{ name, table, column string }{
	{"repos_id_seq", "repos", "id"},
	{"packages_id_seq", "packages", "id"},
	{"events_seq_seq", "events", "seq"},
	{"tokens_id_seq", "tokens", "id"},
	{"mirror_syncs_id_seq", "mirror_syncs", "id"},
}

// ResetSequences moves every identity sequence (repos_id_seq,
// packages_id_seq, events_seq_seq, tokens_id_seq, mirror_syncs_id_seq) past
// the highest value of its column, never backwards, so that ids and sequence numbers stay unique
// after rows were copied in with their own (packyard migrate).
func (s *Store) ResetSequences(ctx context.Context) error {
	err := s.write(ctx, locked, func(tx pgx.Tx) error {
		for _, q := range sequences {
			_, err := tx.Exec(ctx, fmt.Sprintf(`SELECT setval('%[1]s', GREATEST(
				(SELECT COALESCE(max(%[3]s), 0) + 1 FROM %[2]s),
				(SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM %[1]s)), false)`,
				q.name, q.table, q.column))
			if err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reset sequences: %w", dbErr(err))
	}
	return nil
}

// How write runs a transaction.
type writeMode int

const (
	// plain transactions take no lock: they write only tokens, which are
	// not part of the change feed.
	plain writeMode = iota
	// locked transactions take the write lock.
	locked
	// appending transactions take the write lock and, at commit, signal
	// WatchEvents listeners: every transaction that appends an event.
	appending
)

// write runs fn in a transaction and commits it if fn succeeds.
//
// fn may run twice: when the first attempt lost its connection before
// COMMIT (the server restarted, leaving the pool's idle connections dead),
// the transaction, which the server rolled back, is run again from the
// start on a fresh connection. fn must therefore set every result it
// returns through its closure anew.
func (s *Store) write(ctx context.Context, mode writeMode, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		committing, err := s.writeOnce(ctx, mode, fn)
		if err == nil || committing || attempt > 1 || ctx.Err() != nil || !unavailable(err) {
			return err
		}
		s.pool.Reset()
	}
}

// writeOnce runs one attempt of write and reports whether an error came
// from COMMIT.
func (s *Store) writeOnce(ctx context.Context, mode writeMode, fn func(tx pgx.Tx) error) (committing bool, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: beginQuery(mode)})
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		rollback(tx)
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return true, fmt.Errorf("commit: %w", err)
	}
	return false, nil
}

// beginQuery returns the statements that begin a transaction of mode,
// taking the write lock and queueing the notification with BEGIN, in one
// round trip. If the lock cannot be had (the wait is cancelled), the
// connection is left in a failed transaction, and the pool drops it.
func beginQuery(mode writeMode) string {
	lock := fmt.Sprintf(`BEGIN; SELECT pg_advisory_xact_lock(%d, 0)`, lockClassWrite)
	switch mode {
	case locked:
		return lock
	case appending:
		return lock + `, pg_notify('` + notifyChannel + `', '')`
	}
	return "BEGIN"
}

// rollback ends a failed transaction. It has its own context, since the
// caller's may be what failed; if ROLLBACK cannot be sent, the driver closes
// the connection, which ends the transaction as well.
func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// read runs fn, which must be idempotent, and runs it once more when it
// failed because its connection was lost: after a server restart the pool
// may still hold connections that died with it.
func (s *Store) read(ctx context.Context, fn func() error) error {
	err := fn()
	if err != nil && ctx.Err() == nil && unavailable(err) {
		s.pool.Reset()
		err = fn()
	}
	return err
}

// readTx runs fn in a read-only transaction on one snapshot, as read does.
func (s *Store) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.read(ctx, func() error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	})
}

// appendEvent inserts an event in tx and returns its sequence number.
func appendEvent(ctx context.Context, tx pgx.Tx, typ, repo string, data []byte, at time.Time) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO events (type, repo, data, time) VALUES ($1, $2, $3, $4) RETURNING seq`,
		typ, repo, blob(data), nanos(at)).Scan(&seq)
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

// blob returns b, or an empty slice for nil: the driver sends nil as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// errNoRows reports whether err means a query returned no row.
func errNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
