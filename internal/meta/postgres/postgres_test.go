package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/metatest"
	"github.com/packyard/packyard/internal/meta/sqlite"
	"github.com/packyard/packyard/internal/testengine"
)

func TestMain(m *testing.M) { testengine.Main(m) }

// open opens a store on dsn and closes it when t ends.
func open(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := Open(t.Context(), testengine.Postgres(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s // Run closes it
	})
}

// appliedMigrations returns version → applied_at of schema_migrations; a
// migration that ran again would change its time.
func appliedMigrations(t *testing.T, s *Store) map[int64]int64 {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]int64{}
	var v, at int64
	_, err = pgx.ForEachRow(rows, []any{&v, &at}, func() error { m[v] = at; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	dsn := testengine.Postgres(t)
	s := open(t, dsn)
	r := &meta.Repo{Name: "el9", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	migrated := appliedMigrations(t, s)
	all, err := listMigrations()
	if err != nil || len(migrated) != len(all) {
		t.Fatalf("%d migrations recorded, want %d (%v)", len(migrated), len(all), err)
	}
	s.Close()

	s = open(t, dsn)
	if got := appliedMigrations(t, s); fmt.Sprint(got) != fmt.Sprint(migrated) {
		t.Errorf("migrations after reopening = %v, want %v unchanged", got, migrated)
	}
	got, err := s.GetRepo(ctx, "el9")
	if err != nil || got.ID != r.ID || !got.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("GetRepo after reopening = %+v, %v; want %+v", got, err, r)
	}
}

// TestOpenTogether opens several stores on a new database at once, as
// nodes starting together do: each migration is applied once.
func TestOpenTogether(t *testing.T) {
	dsn := testengine.Postgres(t)
	const n = 6
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var count, distinct int
	err := stores[0].pool.QueryRow(t.Context(),
		`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&count, &distinct)
	all, _ := listMigrations()
	if err != nil || count != len(all) || distinct != len(all) {
		t.Errorf("schema_migrations: %d rows, %d versions, %v; want %d", count, distinct, err, len(all))
	}
}

func TestOpenBadDSN(t *testing.T) {
	if s, err := Open(t.Context(), "postgres://[bad"); err == nil {
		s.Close()
		t.Fatal("Open with a malformed DSN succeeded")
	}
	// Nothing listens on the port: the error says the database is
	// unavailable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s, err := Open(t.Context(), "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	if err == nil {
		s.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("Open of a closed port: %v, want ErrUnavailable", err)
	}
}

// TestSchemaMatchesSQLite checks that the two stores have the same tables,
// columns (in order, with corresponding types and nullability) and index
// names, so that rows copy between them table by table.
func TestSchemaMatchesSQLite(t *testing.T) {
	ctx := t.Context()
	file := filepath.Join(t.TempDir(), "meta.db")
	ls, err := sqlite.Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	ls.Close()
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT m.name, c.name, c.type, c."notnull" OR c.pk > 0 FROM sqlite_master m
		JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
		ORDER BY m.name, c.cid`)
	if err != nil {
		t.Fatal(err)
	}
	sqliteType := map[string]string{"INTEGER": "bigint", "TEXT": "text", "BLOB": "bytea"}
	var want []string
	for rows.Next() {
		var table, column, typ string
		var notNull bool
		if err := rows.Scan(&table, &column, &typ, &notNull); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s.%s %s notnull=%v", table, column, sqliteType[typ], notNull))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var wantIndexes []string
	if err := queryStrings(ctx, db, &wantIndexes, `SELECT name FROM sqlite_master
		WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name`); err != nil {
		t.Fatal(err)
	}

	s := open(t, testengine.Postgres(t))
	got, err := pgStrings(ctx, s, `SELECT table_name || '.' || column_name || ' ' || data_type ||
			' notnull=' || (is_nullable = 'NO')::text
		FROM information_schema.columns WHERE table_schema = current_schema()
		ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("PostgreSQL columns:\n%q\nSQLite columns:\n%q", got, want)
	}
	// Constraint indexes are named by each engine; the others by us.
	gotIndexes, err := pgStrings(ctx, s, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
		AND indexname NOT LIKE '%\_pkey' AND indexname NOT LIKE '%\_key' ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotIndexes, wantIndexes) {
		t.Errorf("PostgreSQL indexes %q, SQLite indexes %q", gotIndexes, wantIndexes)
	}
}

func queryStrings(ctx context.Context, db *sql.DB, dst *[]string, query string) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		*dst = append(*dst, s)
	}
	return rows.Err()
}

func pgStrings(ctx context.Context, s *Store, query string) ([]string, error) {
	rows, err := s.pool.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func TestResetSequences(t *testing.T) {
	ctx := t.Context()
	s := open(t, testengine.Postgres(t))
	// Rows copied in with their own ids, as packyard migrate does.
	for _, q := range []string{
		`INSERT INTO repos (id, name, format, kind, config, created_at, updated_at)
			VALUES (100, 'copied', 'rpm', 'hosted', '', 1, 1)`,
		`INSERT INTO packages (id, repo_id, scope, name, epoch, version, release, arch, path, digest, size,
			summary, uploaded_by, uploaded_at, added_seq) VALUES (300, 100, '', 'p', '', '1', '1', 'noarch', 'p.rpm', 'd', 1, '', '', 1, 500)`,
		`INSERT INTO events (seq, type, repo, data, time) VALUES (500, 'package.added', 'copied', '{}', 1)`,
		`INSERT INTO tokens (id, name, hash, scope, repos, created_at) VALUES (40, 't', 'h', 'read', 'null', 1)`,
		`INSERT INTO mirror_syncs (id, repo_id, started_at, finished_at, status, error, seq, generation, stats)
			VALUES (70, 100, 1, 2, 'ok', '', 500, 0, '')`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.ResetSequences(ctx); err != nil {
		t.Fatal(err)
	}
	r := &meta.Repo{Name: "new", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(ctx, r); err != nil || r.ID <= 100 {
		t.Fatalf("CreateRepo after reset: ID %d, %v; want above 100", r.ID, err)
	}
	p, err := s.AddPackage(ctx, &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: "q"}, Path: "q.rpm", Digest: "e"})
	if err != nil || p.ID <= 300 || p.AddedSeq <= 500 {
		t.Fatalf("AddPackage after reset = %+v, %v; want ID above 300, AddedSeq above 500", p, err)
	}
	tok := &meta.Token{Name: "u", Hash: "h2", Scope: meta.ScopeRead}
	if err := s.CreateToken(ctx, tok); err != nil || tok.ID <= 40 {
		t.Fatalf("CreateToken after reset: ID %d, %v; want above 40", tok.ID, err)
	}
	ms := &meta.MirrorSync{RepoID: r.ID, StartedAt: time.Now(), Status: meta.SyncRunning}
	if err := s.PutSync(ctx, ms); err != nil || ms.ID <= 70 {
		t.Fatalf("PutSync after reset: ID %d, %v; want above 70", ms.ID, err)
	}
	// Never backwards: with the highest rows gone, ids are still not reused.
	if err := s.DeleteRepo(ctx, r.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetSequences(ctx); err != nil {
		t.Fatal(err)
	}
	again := &meta.Repo{Name: "again", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(ctx, again); err != nil || again.ID <= r.ID {
		t.Fatalf("CreateRepo after a second reset: ID %d, %v; want above %d", again.ID, err, r.ID)
	}
}

// waitSignal fails t unless ch receives within d.
func waitSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch channel closed", what)
		}
	case <-time.After(d):
		t.Fatalf("%s: no signal within %v", what, d)
	}
}

// drain empties ch of a signal it holds.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func TestWatchEvents(t *testing.T) {
	ctx := t.Context()
	dsn := testengine.Postgres(t)
	a, b := open(t, dsn), open(t, dsn)

	wctx, cancel := context.WithCancel(ctx)
	wa := a.WatchEvents(wctx)
	wb := b.WatchEvents(ctx)
	// The first signal says the listener is listening.
	waitSignal(t, wa, 10*time.Second, "a: first listen")
	waitSignal(t, wb, 10*time.Second, "b: first listen")

	r := &meta.Repo{Name: "watched", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := b.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, wa, time.Second, "a after b's CreateRepo")
	drain(wb)
	if _, err := a.AddPackage(ctx, &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: "p"}, Path: "p", Digest: "d"}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, wb, time.Second, "b after a's AddPackage")
	waitSignal(t, wa, time.Second, "a after its own AddPackage")

	// Writes that append no event do not signal.
	drain(wa)
	if err := b.CreateToken(ctx, &meta.Token{Name: "t", Hash: "h", Scope: meta.ScopeRead}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateRepo(ctx, r); !errors.Is(err, meta.ErrExists) {
		t.Fatalf("CreateRepo again: %v, want ErrExists", err)
	}
	select {
	case <-wa:
		t.Errorf("signal after writes that appended no event")
	case <-time.After(300 * time.Millisecond):
	}

	// Ending the context closes the channel and, with no channel left,
	// stops the listener.
	cancel()
	for range wa { // drains a pending signal, ends when closed
	}
	if !waitFor(5*time.Second, func() bool {
		a.watch.mu.Lock()
		defer a.watch.mu.Unlock()
		return a.watch.stop == nil
	}) {
		t.Fatal("listener still running after its only watcher's context ended")
	}
	done := make(chan struct{})
	go func() { a.watch.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("listener goroutine did not end")
	}

	// Close closes the channels of watchers whose contexts go on.
	b.Close()
	for range wb {
	}
	if ch := b.WatchEvents(ctx); !closed(ch) {
		t.Error("WatchEvents on a closed store returned an open channel")
	}
}

// closed reports whether ch is closed, waiting a little for it.
func closed(ch <-chan struct{}) bool {
	select {
	case _, ok := <-ch:
		return !ok
	case <-time.After(time.Second):
		return false
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// lockWaiters returns the number of sessions waiting for the publish lock
// of repoID.
func lockWaiters(t *testing.T, s *Store, repoID int64) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND NOT granted AND classid = $1 AND objid = $2 AND objsubid = 2`,
		uint32(lockClassPublish), uint32(publishLockID(repoID))).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLockPublish(t *testing.T) {
	ctx := t.Context()
	dsn := testengine.Postgres(t)
	a, b := open(t, dsn), open(t, dsn)

	unlockA, err := a.LockPublish(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.LockPublish(tctx, 7)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second LockPublish while the first holds the lock: %v, want the context's deadline", err)
	}
	// The abandoned wait does not linger on the server.
	if !waitFor(10*time.Second, func() bool { return lockWaiters(t, a, 7) == 0 }) {
		t.Fatal("the interrupted LockPublish still waits on the server")
	}

	// Another repository's lock is free.
	unlock8, err := b.LockPublish(ctx, 8)
	if err != nil {
		t.Fatalf("LockPublish of another repository: %v", err)
	}
	unlock8()

	got := make(chan error, 1)
	var unlockB func()
	go func() {
		var err error
		unlockB, err = b.LockPublish(ctx, 7)
		got <- err
	}()
	if !waitFor(10*time.Second, func() bool { return lockWaiters(t, a, 7) == 1 }) {
		t.Fatal("the second LockPublish is not waiting on the server")
	}
	select {
	case err := <-got:
		t.Fatalf("second LockPublish returned (%v) while the first holds the lock", err)
	default:
	}
	unlockA()
	unlockA() // a second call does nothing
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("second LockPublish after unlock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second LockPublish did not get the lock after unlock")
	}
	unlockB()
	// The connections went back to the pool, without the lock.
	unlock, err := a.LockPublish(ctx, 7)
	if err != nil {
		t.Fatalf("LockPublish after both unlocked: %v", err)
	}
	unlock()
	if n := a.locks.Stat().AcquiredConns() + b.locks.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d lock connections still acquired after every unlock", n)
	}
}

// TestConcurrentStores adds packages from 200 goroutines through two stores
// on one database, as two nodes would, while a third store follows the
// feed: every add succeeds once, and events become visible in sequence
// order, each with its package.
func TestConcurrentStores(t *testing.T) {
	ctx := t.Context()
	dsn := testengine.Postgres(t)
	nodes := []*Store{open(t, dsn), open(t, dsn)}
	follower := open(t, dsn)
	r := &meta.Repo{Name: "busy", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := nodes[0].CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	start, err := follower.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var followed []int64
	followErr := make(chan error, 1)
	go func() {
		since := start
		for finished := false; ; {
			select {
			case <-done:
				finished = true
			default:
			}
			evs, err := follower.Events(ctx, since, 50)
			if err != nil {
				followErr <- err
				return
			}
			for _, e := range evs {
				var d meta.PackageEventData
				if err := json.Unmarshal(e.Data, &d); err != nil {
					followErr <- fmt.Errorf("event %d: %w", e.Seq, err)
					return
				}
				if _, err := follower.GetPackage(ctx, r.ID, d.ID); err != nil {
					followErr <- fmt.Errorf("event %d seen but not its package %d: %w", e.Seq, d.ID, err)
					return
				}
				followed = append(followed, e.Seq)
				since = e.Seq
			}
			if finished && len(evs) == 0 {
				followErr <- nil
				return
			}
		}
	}()

	const n = 200
	const dups = 20 // the last dups callers add one package between them
	pkgs := make([]*meta.Package, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("pkg%03d", i)
			if i >= n-dups {
				name = "same"
			}
			p := &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: name, Version: "1"},
				Path: name + ".rpm", Digest: name, Fragments: map[string][]byte{"primary": []byte(name)}}
			pkgs[i], errs[i] = nodes[i%2].AddPackage(ctx, p)
		})
	}
	wg.Wait()
	close(done)
	if err := <-followErr; err != nil {
		t.Fatalf("follower: %v", err)
	}

	added := map[int64]bool{}
	winners := 0
	for i, err := range errs {
		switch {
		case i >= n-dups && errors.Is(err, meta.ErrExists):
		case err != nil:
			t.Fatalf("AddPackage %d: %v", i, err)
		default:
			if i >= n-dups {
				winners++
			}
			if added[pkgs[i].AddedSeq] {
				t.Errorf("AddPackage %d: AddedSeq %d given twice", i, pkgs[i].AddedSeq)
			}
			added[pkgs[i].AddedSeq] = true
		}
	}
	if winners != 1 {
		t.Errorf("%d of %d adds of one package succeeded, want 1", winners, dups)
	}
	all, err := follower.Events(ctx, start, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, e := range all {
		seqs = append(seqs, e.Seq)
		if !added[e.Seq] {
			t.Errorf("event %d is not the AddedSeq of a successful add", e.Seq)
		}
	}
	if len(all) != n-dups+1 {
		t.Errorf("%d events, want %d", len(all), n-dups+1)
	}
	if !slices.Equal(followed, seqs) {
		t.Errorf("the follower saw events %v,\nwant %v: some became visible after a higher one", followed, seqs)
	}
}

// TestRestart stops and restarts PostgreSQL under an open store: calls fail
// with meta.ErrUnavailable while it is down, succeed again once it is back,
// and WatchEvents signals after its listener reconnects.
func TestRestart(t *testing.T) {
	ctx := t.Context()
	dsn := testengine.Postgres(t)
	s := open(t, dsn)
	watch := s.WatchEvents(ctx)
	waitSignal(t, watch, 10*time.Second, "first listen")
	r := &meta.Repo{Name: "durable", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	pkg := func(name string) *meta.Package {
		return &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: name}, Path: name, Digest: name}
	}
	// Connections idle in the pool, to be found dead later.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _ = s.GetRepo(ctx, r.Name) })
	}
	wg.Wait()

	testengine.PostgresStop(t)
	running := false
	defer func() {
		if !running {
			testengine.PostgresStart(t)
		}
	}()
	calls := []struct {
		name string
		call func() error
	}{
		{"GetRepo", func() error { _, err := s.GetRepo(ctx, r.Name); return err }},
		{"LastSeq", func() error { _, err := s.LastSeq(ctx); return err }},
		{"CreateRepo", func() error {
			return s.CreateRepo(ctx, &meta.Repo{Name: "down", Format: meta.FormatRPM, Kind: meta.KindHosted})
		}},
		{"AddPackage", func() error { _, err := s.AddPackage(ctx, pkg("down")); return err }},
		{"TouchToken", func() error { return s.TouchToken(ctx, 1, time.Now()) }},
		{"LockPublish", func() error { _, err := s.LockPublish(ctx, r.ID); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, meta.ErrUnavailable) {
			t.Errorf("%s while PostgreSQL is down: %v, want ErrUnavailable", c.name, err)
		} else {
			t.Logf("%s while PostgreSQL is down: %v", c.name, err)
		}
	}

	drain(watch)
	testengine.PostgresStart(t)
	running = true
	waitSignal(t, watch, 15*time.Second, "listener reconnected after start")
	if _, err := s.GetRepo(ctx, r.Name); err != nil {
		t.Fatalf("GetRepo after start: %v", err)
	}
	if _, err := s.AddPackage(ctx, pkg("after-start")); err != nil {
		t.Fatalf("AddPackage after start: %v", err)
	}

	// A restart while connections sit idle in the pool: they die with the
	// server, and the next calls replace them.
	for range 8 {
		wg.Go(func() { _, _ = s.GetRepo(ctx, r.Name) })
	}
	wg.Wait()
	drain(watch)
	testengine.PostgresRestart(t)
	if _, err := s.GetRepo(ctx, r.Name); err != nil {
		t.Errorf("GetRepo right after restart: %v", err)
	}
	if _, err := s.AddPackage(ctx, pkg("after-restart")); err != nil {
		t.Errorf("AddPackage right after restart: %v", err)
	}
	if _, err := s.Publish(ctx, &meta.Generation{RepoID: r.ID}, 0); err != nil {
		t.Errorf("Publish right after restart: %v", err)
	}
	waitSignal(t, watch, 15*time.Second, "listener reconnected after restart")

	// The reconnected listener hears other processes' events.
	other := open(t, dsn)
	drain(watch)
	if _, err := other.AddPackage(ctx, pkg("other")); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, watch, time.Second, "event after reconnect")

	ps, err := s.ListPackages(ctx, r.ID, meta.PackageQuery{})
	if err != nil || len(ps) != 3 {
		t.Errorf("ListPackages after restarts = %d packages, %v; want 3", len(ps), err)
	}
}

// TestUnavailable checks which errors count as a lost database.
func TestUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connect", &pgconn.ConnectError{}, true},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"canceled", fmt.Errorf("query: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"sentinel", meta.ErrNotFound, false},
	}
	for _, tc := range cases {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("%s: unavailable = %v, want %v", tc.name, got, tc.want)
		}
		if got := errors.Is(dbErr(tc.err), meta.ErrUnavailable); got != tc.want {
			t.Errorf("%s: dbErr wraps ErrUnavailable = %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := dbErr(&pgconn.PgError{Code: "23505"}); !errors.Is(err, meta.ErrExists) {
		t.Errorf("dbErr(unique violation) = %v, want ErrExists", err)
	}
}

// populate gives s a little of everything: a repository with packages (one
// removed), fragments, a generation whose files are not in path order and
// have parts, a snapshot of it, two sync records (one with nil stats) and a
// used token.
func populate(t *testing.T, s meta.Store) {
	t.Helper()
	ctx := t.Context()
	r := &meta.Repo{Name: "copied", Format: meta.FormatDeb, Kind: meta.KindHosted, Config: []byte(`{"a":1}`)}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	var last *meta.Package
	for _, n := range []string{"zeta", "alpha", "mid"} {
		p := &meta.Package{RepoID: r.ID, Identity: meta.Identity{Scope: "stable/main", Name: n, Version: "1", Arch: "amd64"},
			Path: "pool/" + n + ".deb", Digest: fmt.Sprintf("%064x", len(n)), Size: 5 << 30, UploadedAt: time.Now(),
			Fragments: map[string][]byte{"Packages": []byte(n), "other": {}, "binary": {0, 0xff, 0}}}
		var err error
		if last, err = s.AddPackage(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RemovePackage(ctx, r.ID, last.ID); err != nil {
		t.Fatal(err)
	}
	g := &meta.Generation{RepoID: r.ID, Seq: last.AddedSeq, Files: []meta.GenFile{
		{Path: "dists/stable/main/binary-amd64/Packages.gz", Digest: fmt.Sprintf("%064x", 10), Size: 10, ContentType: "application/gzip",
			Parts: []string{fmt.Sprintf("%064x", 11), fmt.Sprintf("%064x", 12)}},
		{Path: "dists/stable/InRelease", Digest: fmt.Sprintf("%064x", 13), Size: 3, ContentType: "text/plain"},
	}}
	if _, err := s.Publish(ctx, g, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSnapshot(ctx, &meta.Snapshot{RepoID: r.ID, Name: "release-1", Generation: g.Number}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	for _, ms := range []*meta.MirrorSync{
		{RepoID: r.ID, StartedAt: started, FinishedAt: started.Add(time.Second), Status: meta.SyncOK,
			Seq: g.Seq, Generation: g.Number, Stats: []byte(`{"added":3}`)},
		{RepoID: r.ID, StartedAt: started.Add(time.Minute), Status: meta.SyncFailed, Error: "upstream: 503"},
	} {
		if err := s.PutSync(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	tok := &meta.Token{Name: "ci", Hash: "h", Scope: meta.ScopeWrite, Repos: []string{"copied"}}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchToken(ctx, tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// copyStore copies every table from src to dst as packyard migrate does.
func copyStore(t *testing.T, src, dst meta.TableCopier) {
	t.Helper()
	ctx := t.Context()
	for _, table := range meta.CopyTables {
		var cols []string
		var rows [][]any
		if err := src.ExportRows(ctx, table, func(c []string, row []any) error {
			cols, rows = c, append(rows, row)
			return nil
		}); err != nil {
			t.Fatalf("export %s: %v", table, err)
		}
		if len(rows) == 0 {
			continue
		}
		if err := dst.ImportRows(ctx, table, cols, rows); err != nil {
			t.Fatalf("import %s: %v", table, err)
		}
	}
	if err := dst.FinishImport(ctx); err != nil {
		t.Fatal(err)
	}
}

// tableRows returns every row of every table of s, each as text (bytes and
// strings alike), sorted, so that stores compare whatever their order.
func tableRows(t *testing.T, s meta.TableCopier) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range meta.CopyTables {
		err := s.ExportRows(t.Context(), table, func(cols []string, row []any) error {
			var b []byte
			for i, v := range row {
				if x, ok := v.([]byte); ok {
					v = string(x)
				}
				b = fmt.Appendf(b, "%s=%q ", cols[i], fmt.Sprint(v))
			}
			out[table] = append(out[table], string(b))
			return nil
		})
		if err != nil {
			t.Fatalf("export %s: %v", table, err)
		}
		slices.Sort(out[table])
	}
	return out
}

// TestTableCopier copies an installation from SQLite to PostgreSQL and back,
// and checks that every row arrives unchanged and that the copy goes on
// numbering after the copied IDs and sequence numbers.
func TestTableCopier(t *testing.T) {
	ctx := t.Context()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	populate(t, src)
	want := tableRows(t, src)

	pg := open(t, testengine.Postgres(t))
	copyStore(t, src, pg)
	if got := tableRows(t, pg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PostgreSQL after the copy:\n%v\nSQLite:\n%v", got, want)
	}

	back, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	copyStore(t, pg, back)
	if got := tableRows(t, back); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SQLite copied back from PostgreSQL:\n%v\nwant:\n%v", got, want)
	}

	last, err := pg.LastSeq(ctx)
	if err != nil || last == 0 {
		t.Fatalf("LastSeq after the copy = %d, %v", last, err)
	}
	r, err := pg.GetRepo(ctx, "copied")
	if err != nil || r.CurrentGeneration != 1 {
		t.Fatalf("GetRepo after the copy = %+v, %v", r, err)
	}
	p, err := pg.AddPackage(ctx, &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: "new"}, Path: "new", Digest: "d"})
	if err != nil || p.AddedSeq <= last {
		t.Fatalf("AddPackage after the copy = %+v, %v; want AddedSeq above %d", p, err, last)
	}
	n := 0
	if err := pg.LivePackages(ctx, r.ID, p.AddedSeq, func(*meta.Package) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("LivePackages after the copy: %d, %v; want 3", n, err)
	}
	g, err := pg.GetGeneration(ctx, r.ID, 1)
	if err != nil || len(g.Files) != 2 || len(g.Files[1].Parts) != 2 {
		t.Errorf("GetGeneration after the copy = %+v, %v", g, err)
	}
	if sn, err := pg.GetSnapshot(ctx, r.ID, "release-1"); err != nil || sn.Generation != 1 {
		t.Errorf("GetSnapshot after the copy = %+v, %v", sn, err)
	}
	syncs, err := pg.ListSyncs(ctx, r.ID, 0)
	if err != nil || len(syncs) != 2 {
		t.Fatalf("ListSyncs after the copy = %+v, %v; want 2 records", syncs, err)
	}
	ms := &meta.MirrorSync{RepoID: r.ID, StartedAt: time.Now(), Status: meta.SyncRunning}
	if err := pg.PutSync(ctx, ms); err != nil || ms.ID <= syncs[0].ID {
		t.Errorf("PutSync after the copy: ID %d, %v; want above %d", ms.ID, err, syncs[0].ID)
	}
}

func benchPackage(repoID int64, i int) *meta.Package {
	frag := func(n int) []byte { b := make([]byte, n); copy(b, fmt.Sprint(i)); return b }
	return &meta.Package{
		RepoID:     repoID,
		Identity:   meta.Identity{Name: fmt.Sprintf("pkg%06d", i), Epoch: "0", Version: "1.0", Release: "1", Arch: "x86_64"},
		Path:       fmt.Sprintf("Packages/p/pkg%06d-1.0-1.x86_64.rpm", i),
		Digest:     fmt.Sprintf("%064x", i),
		Size:       123456,
		Summary:    "A benchmark package",
		UploadedBy: "bench",
		Fragments:  map[string][]byte{"primary": frag(1200), "filelists": frag(2500), "other": frag(600)},
	}
}

func benchRepo(b *testing.B) (*Store, *meta.Repo) {
	s := open(b, testengine.Postgres(b))
	r := &meta.Repo{Name: "bench", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(b.Context(), r); err != nil {
		b.Fatal(err)
	}
	return s, r
}

func BenchmarkAddPackage(b *testing.B) {
	s, r := benchRepo(b)
	i := 0
	for b.Loop() {
		if _, err := s.AddPackage(b.Context(), benchPackage(r.ID, i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAddPackageParallel adds from 8 goroutines per CPU, which group
// commit folds into shared transactions.
func BenchmarkAddPackageParallel(b *testing.B) {
	s, r := benchRepo(b)
	var mu sync.Mutex
	next := 0
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i := next
			next++
			mu.Unlock()
			if _, err := s.AddPackage(b.Context(), benchPackage(r.ID, i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestTryLockSync: the mirror-sync lock is taken without waiting, by one
// store (node) at a time, per repository, apart from the publish lock;
// released by unlock or with the store.
func TestTryLockSync(t *testing.T) {
	ctx := t.Context()
	dsn := testengine.Postgres(t)
	a, b := open(t, dsn), open(t, dsn)
	unlockA, ok, err := a.TryLockSync(ctx, 7)
	if err != nil || !ok {
		t.Fatalf("first TryLockSync: %v %v", ok, err)
	}
	if _, ok, err := b.TryLockSync(ctx, 7); err != nil || ok {
		t.Fatalf("TryLockSync while another store holds it: %v %v, want false", ok, err)
	}
	unlock8, ok, err := b.TryLockSync(ctx, 8)
	if err != nil || !ok {
		t.Fatalf("TryLockSync of another repository: %v %v", ok, err)
	}
	unlock8()
	unlockP, err := b.LockPublish(ctx, 7)
	if err != nil {
		t.Fatalf("the publish lock of a repository being synced: %v", err)
	}
	unlockP()
	unlockA()
	unlockA() // a second call does nothing
	unlockB, ok, err := b.TryLockSync(ctx, 7)
	if err != nil || !ok {
		t.Fatalf("TryLockSync after unlock: %v %v", ok, err)
	}
	// Closing the store releases it with the session (the server
	// notices the closed connection a moment later).
	b.Close()
	var unlock func()
	if !waitFor(10*time.Second, func() bool {
		var ok bool
		unlock, ok, err = a.TryLockSync(ctx, 7)
		return err == nil && ok
	}) {
		t.Fatalf("TryLockSync after the holder closed: %v", err)
	}
	unlock()
	unlockB() // after Close: does nothing
	if n := a.locks.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d lock connections still acquired after every unlock", n)
	}
}
