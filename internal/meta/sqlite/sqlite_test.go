package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/metatest"
)

func open(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		return open(t, filepath.Join(t.TempDir(), "meta.db"))
	})
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s := open(t, path)
	r := &meta.Repo{Name: "el9", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	migrated := appliedMigrations(t, s)
	if len(migrated) == 0 {
		t.Fatal("no migration recorded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	if got := appliedMigrations(t, s); fmt.Sprint(got) != fmt.Sprint(migrated) {
		t.Errorf("migrations after reopening = %v, want %v unchanged", got, migrated)
	}
	got, err := s.GetRepo(ctx, "el9")
	if err != nil || got.ID != r.ID || !got.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("GetRepo after reopening = %+v, %v; want %+v", got, err, r)
	}
	if seq, err := s.LastSeq(ctx); err != nil || seq != 1 {
		t.Errorf("LastSeq after reopening = %d, %v; want 1", seq, err)
	}
}

// appliedMigrations returns version → applied_at of schema_migrations; a
// migration that ran again would change its time.
func appliedMigrations(t *testing.T, s *Store) map[int64]int64 {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int64]int64{}
	for rows.Next() {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		m[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTwoOpeners checks that two stores on one file, as two processes would
// have, see each other's writes, and that sequence numbers stay unique.
func TestTwoOpeners(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()

	r := &meta.Repo{Name: "shared", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := a.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetRepo(ctx, "shared"); err != nil || got.ID != r.ID {
		t.Fatalf("second opener: GetRepo = %+v, %v; want %+v", got, err, r)
	}
	p, err := b.AddPackage(ctx, &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: "foo", Version: "1"},
		Path: "foo.rpm", Digest: "d1", Fragments: map[string][]byte{"primary": []byte("<p/>")}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.GetPackage(ctx, r.ID, p.ID); err != nil || got.Path != "foo.rpm" {
		t.Errorf("first opener: GetPackage = %+v, %v", got, err)
	}
	if _, err := a.AddPackage(ctx, &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: "foo", Version: "1"},
		Path: "other.rpm"}); err == nil {
		t.Errorf("first opener added a duplicate of the second's package")
	}
	evs, err := a.Events(ctx, 0, 0)
	if err != nil || len(evs) != 2 || evs[0].Seq >= evs[1].Seq || evs[1].Seq != p.AddedSeq {
		t.Errorf("events seen by the first opener = %+v, %v", evs, err)
	}
}

func TestOpenRejectsURI(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func fragments(i int) map[string][]byte {
	primary := make([]byte, 1200)
	filelists := make([]byte, 2500)
	other := make([]byte, 600)
	for j := range filelists {
		filelists[j] = byte(i + j)
	}
	copy(primary, fmt.Sprintf("<package type=\"rpm\"><name>pkg%06d</name>", i))
	copy(other, fmt.Sprintf("<package pkgid=\"%d\">", i))
	return map[string][]byte{"primary": primary, "filelists": filelists, "other": other}
}

func benchPackage(repoID int64, i int) *meta.Package {
	return &meta.Package{
		RepoID:     repoID,
		Identity:   meta.Identity{Name: fmt.Sprintf("pkg%06d", i), Epoch: "0", Version: "1.0", Release: "1", Arch: "x86_64"},
		Path:       fmt.Sprintf("Packages/p/pkg%06d-1.0-1.x86_64.rpm", i),
		Digest:     fmt.Sprintf("%064x", i),
		Size:       123456,
		Summary:    "A benchmark package",
		UploadedBy: "bench",
		Fragments:  fragments(i),
	}
}

func BenchmarkAddPackage(b *testing.B) {
	ctx := b.Context()
	s := open(b, filepath.Join(b.TempDir(), "meta.db"))
	defer s.Close()
	r := &meta.Repo{Name: "bench", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(ctx, r); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := s.AddPackage(ctx, benchPackage(r.ID, i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkLivePackages20k(b *testing.B) {
	ctx := b.Context()
	s := open(b, filepath.Join(b.TempDir(), "meta.db"))
	defer s.Close()
	r := &meta.Repo{Name: "bench", Format: meta.FormatRPM, Kind: meta.KindHosted}
	if err := s.CreateRepo(ctx, r); err != nil {
		b.Fatal(err)
	}
	const n = 20000
	// Load in big transactions: the benchmark is about reading.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		p := benchPackage(r.ID, i)
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO packages (repo_id, scope, name, epoch, version, release, arch,
				path, digest, size, summary, uploaded_by, uploaded_at, added_seq, removed_seq)
			VALUES ($1, '', $2, '0', '1.0', '1', 'x86_64', $3, $4, $5, $6, $7, 0, $8, 0) RETURNING id`,
			r.ID, p.Name, p.Path, p.Digest, p.Size, p.Summary, p.UploadedBy, int64(i+2)).Scan(&id); err != nil {
			b.Fatal(err)
		}
		for kind, data := range p.Fragments {
			if _, err := tx.StmtContext(ctx, s.stmtInsertFragment).ExecContext(ctx, id, kind, data); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		count := 0
		err := s.LivePackages(ctx, r.ID, n+10, func(p *meta.Package) error {
			if len(p.Fragments) != 3 {
				return fmt.Errorf("package %d has %d fragments", p.ID, len(p.Fragments))
			}
			count++
			return nil
		})
		if err != nil || count != n {
			b.Fatalf("LivePackages: %d packages, %v", count, err)
		}
	}
}

// TestPragmas checks the settings that durability and integrity rest on, on
// the writer and on a reader connection.
func TestPragmas(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "meta.db"))
	defer s.Close()
	cases := []struct {
		pragma string
		writer string
		reader string
	}{
		{"journal_mode", "wal", "wal"},
		{"synchronous", "2", "2"}, // FULL
		{"foreign_keys", "1", "1"},
		{"busy_timeout", "10000", "10000"},
		{"query_only", "0", "1"},
	}
	for _, tc := range cases {
		for _, c := range []struct {
			name string
			db   interface {
				QueryRowContext(context.Context, string, ...any) *sql.Row
			}
			want string
		}{{"writer", s.w, tc.writer}, {"reader", s.r, tc.reader}} {
			var got string
			if err := c.db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", c.name, tc.pragma, err)
			}
			if got != c.want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", c.name, tc.pragma, got, c.want)
			}
		}
	}
}

// TestAddedSeqIsTheEventsSeq: a package row's added_seq, written with the
// row (the sequence number the event inserted next will get), is its
// package.added event's, for concurrent adds folded into batches, and
// still when the prediction cannot hold (the UPDATE fallback).
func TestAddedSeqIsTheEventsSeq(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "meta.db"))
	defer s.Close()
	r := &meta.Repo{Name: "r", Format: meta.FormatDeb, Kind: meta.KindHosted, Config: []byte(`{}`)}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	add := func(name string) {
		p := &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: name, Version: "1", Arch: "amd64"}, Path: "pool/" + name + ".deb",
			Digest: fmt.Sprintf("%064d", len(name)), Fragments: map[string][]byte{"Packages": []byte(name)}}
		if _, err := s.AddPackage(ctx, p); err != nil {
			t.Error(err)
		}
	}
	check := func(want int) {
		t.Helper()
		bySeq := map[int64]int64{} // event seq → package ID in its data
		evs, err := s.Events(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == meta.EventPackageAdded {
				var d meta.PackageEventData
				if err := json.Unmarshal(e.Data, &d); err != nil {
					t.Fatal(err)
				}
				bySeq[e.Seq] = d.ID
			}
		}
		rows, err := s.r.QueryContext(ctx, `SELECT id, added_seq FROM packages`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var id, seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				t.Fatal(err)
			}
			if bySeq[seq] != id {
				t.Errorf("package %d: added_seq %d is the event of package %d", id, seq, bySeq[seq])
			}
			n++
		}
		if n != want || len(bySeq) != want {
			t.Fatalf("%d packages, %d package.added events, want %d", n, len(bySeq), want)
		}
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() { add(fmt.Sprintf("p%02d", i)) })
	}
	wg.Wait()
	check(40)
	// Without the events' sqlite_sequence row the predicted number is
	// wrong; the row must still name its event.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sqlite_sequence WHERE name = 'events'`); err != nil {
		t.Fatal(err)
	}
	add("late")
	check(41)
}
