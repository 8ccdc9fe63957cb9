package maint_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/maint"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/sqlite"
)

// install is a small installation: a repository with packages and a
// published generation whose index is made of parts.
type install struct {
	m     meta.Store
	b     blob.Store
	pkgs  []blob.Digest
	index []blob.Digest // parts of the generation's index
	file  blob.Digest   // a whole-blob generation file
}

func newLocal(t *testing.T) (meta.Store, *fsblob.Store) {
	t.Helper()
	dir := t.TempDir()
	m, err := sqlite.Open(t.Context(), dir+"/db")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fsblob.Open(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); b.Close() })
	return m, b
}

func put(t *testing.T, b blob.Store, s string) blob.Digest {
	t.Helper()
	info, err := blob.Put(t.Context(), b, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return info.Digest
}

func populate(t *testing.T, m meta.Store, b blob.Store) *install {
	t.Helper()
	ctx := t.Context()
	in := &install{m: m, b: b}
	r := &meta.Repo{Name: "r", Format: meta.FormatRPM, Kind: meta.KindHosted, Config: []byte(`{"keys":[]}`)}
	if err := m.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		body := fmt.Sprintf("package %d", i)
		d := put(t, b, body)
		in.pkgs = append(in.pkgs, d)
		p := &meta.Package{RepoID: r.ID, Identity: meta.Identity{Name: fmt.Sprintf("p%d", i), Epoch: "0", Version: "1", Release: "1", Arch: "x86_64"},
			Path: fmt.Sprintf("Packages/p%d.rpm", i), Digest: string(d), Size: int64(len(body)), UploadedAt: time.Unix(1700000000, 0),
			Fragments: map[string][]byte{"primary": []byte(fmt.Sprintf("<p%d/>", i))}}
		if _, err := m.AddPackage(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"head", "middle", "tail"} {
		in.index = append(in.index, put(t, b, s))
	}
	in.file = put(t, b, "repomd")
	seq, err := m.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := &meta.Generation{RepoID: r.ID, Seq: seq, Files: []meta.GenFile{
		{Path: "repodata/repomd.xml", Digest: string(in.file), Size: 6, ContentType: "application/xml"},
		{Path: "repodata/primary.xml.gz", Digest: string(blob.DigestOf([]byte("headmiddletail"))), Size: 14,
			ContentType: "application/gzip", Parts: []string{string(in.index[0]), string(in.index[1]), string(in.index[2])}},
	}}
	if _, err := m.Publish(ctx, g, 0); err != nil {
		t.Fatal(err)
	}
	return in
}

// corrupt rewrites a stored blob's file in place.
func corrupt(t *testing.T, b *fsblob.Store, d blob.Digest) {
	t.Helper()
	p := b.Path(d)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	m, b := newLocal(t)
	in := populate(t, m, b)
	rep, err := maint.Verify(t.Context(), m, b, maint.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.BlobsChecked != 7 || rep.GenerationsChecked != 1 || rep.PackagesChecked != 3 {
		t.Fatalf("verify of an intact installation: %+v", rep)
	}

	// A good copy of everything elsewhere, to repair from.
	_, peer := newLocal(t)
	for _, d := range append(append(slices.Clone(in.pkgs), in.index...), in.file) {
		r, err := b.Open(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r)
		r.Close()
		put(t, peer, string(body))
	}

	corrupt(t, b, in.pkgs[1])
	if err := b.Delete(t.Context(), in.index[1]); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(t.Context(), in.file); err != nil {
		t.Fatal(err)
	}
	rep, err = maint.Verify(t.Context(), m, b, maint.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range rep.Problems {
		got[p.Digest] = p.Kind
	}
	want := map[string]string{string(in.index[1]): "missing", string(in.file): "missing", string(in.pkgs[1]): "corrupt"}
	if rep.OK() || len(got) != len(want) {
		t.Fatalf("problems %v, want %v", rep.Problems, want)
	}
	for d, k := range want {
		if got[d] != k {
			t.Errorf("blob %s: %q, want %q", d, got[d], k)
		}
	}
	for _, p := range rep.Problems {
		if p.Digest == string(in.index[1]) && (len(p.Where) != 1 || !strings.Contains(p.Where[0], "generation 1: repodata/primary.xml.gz")) {
			t.Errorf("missing part named by %v", p.Where)
		}
	}

	// Repair: the peer lacks one blob, which stays unrepairable.
	if err := peer.Delete(t.Context(), in.file); err != nil {
		t.Fatal(err)
	}
	fetch := func(ctx context.Context, d blob.Digest) (io.ReadCloser, error) { return peer.Open(ctx, d) }
	rep, err = maint.Verify(t.Context(), m, b, maint.VerifyOptions{Repair: fetch})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if p.Digest == string(in.file) {
			if p.Repaired || p.Unrepairable == "" {
				t.Errorf("blob the peer lacks: %+v", p)
			}
		} else if !p.Repaired {
			t.Errorf("not repaired: %+v", p)
		}
	}
	rep, err = maint.Verify(t.Context(), m, b, maint.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Digest != string(in.file) {
		t.Errorf("after repair: %+v, want only the unrepairable blob", rep.Problems)
	}
}

func TestGC(t *testing.T) {
	m, b := newLocal(t)
	in := populate(t, m, b)
	orphan := put(t, b, "an index part of a pruned generation")
	now := time.Now()

	// Everything is young: nothing goes.
	rep, err := maint.GC(t.Context(), m, b, maint.GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 0 || rep.Young != rep.Blobs {
		t.Fatalf("gc of young blobs: %+v", rep)
	}
	// Two hours later the orphan is old and unreferenced; a dry run spares it.
	later := func() time.Time { return now.Add(2 * time.Hour) }
	rep, err = maint.GC(t.Context(), m, b, maint.GCOptions{Grace: time.Hour, Now: later, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 1 {
		t.Fatalf("dry run: %+v", rep)
	}
	if _, err := b.Stat(t.Context(), orphan); err != nil {
		t.Fatalf("dry run deleted the orphan: %v", err)
	}
	rep, err = maint.GC(t.Context(), m, b, maint.GCOptions{Grace: time.Hour, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 1 || rep.Referenced != 7 {
		t.Fatalf("gc: %+v, want the orphan deleted and 7 referenced", rep)
	}
	if _, err := b.Stat(t.Context(), orphan); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("orphan after gc: %v", err)
	}
	for _, d := range append(append(slices.Clone(in.pkgs), in.index...), in.file) {
		if _, err := b.Stat(t.Context(), d); err != nil {
			t.Errorf("referenced blob %s after gc: %v", d, err)
		}
	}
	v, err := maint.Verify(t.Context(), m, b, maint.VerifyOptions{})
	if err != nil || !v.OK() {
		t.Fatalf("verify after gc: %+v %v", v, err)
	}
}

// TestMigrateLocal copies SQLite+files into another SQLite+files and
// refuses a destination that is not empty.
func TestMigrateLocal(t *testing.T) {
	m, b := newLocal(t)
	populate(t, m, b)
	dm, db := newLocal(t)
	rep, err := maint.Migrate(t.Context(), m, b, dm, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Blobs != 7 || rep.BlobsCopied != 7 || rep.Rows["packages"] != 3 || rep.Rows["generation_files"] != 2 {
		t.Fatalf("migrate: %+v", rep)
	}
	checkSame(t, m, b, dm, db)
	if _, err := maint.Migrate(t.Context(), m, b, dm, db, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("migrate into a used database: %v", err)
	}
}

// checkSame compares two installations: every table row, every blob.
func checkSame(t *testing.T, am meta.Store, ab blob.Store, bm meta.Store, bb blob.Store) {
	t.Helper()
	ac, bc := am.(meta.TableCopier), bm.(meta.TableCopier)
	for _, table := range meta.CopyTables {
		rows := func(c meta.TableCopier) []string {
			var out []string
			if err := c.ExportRows(t.Context(), table, func(_ []string, row []any) error {
				out = append(out, fmt.Sprintf("%s", row))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		if a, b := rows(ac), rows(bc); !slices.Equal(a, b) {
			t.Errorf("table %s differs:\n%v\n%v", table, a, b)
		}
	}
	digests := func(s blob.Store) []string {
		var out []string
		if err := s.Walk(t.Context(), func(i blob.Info) error {
			r, err := s.Open(t.Context(), i.Digest)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(r)
			r.Close()
			if blob.DigestOf(body) != i.Digest {
				return fmt.Errorf("blob %s holds other bytes", i.Digest)
			}
			out = append(out, string(i.Digest))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	if a, b := digests(ab), digests(bb); !slices.Equal(a, b) {
		t.Errorf("blobs differ: %d vs %d", len(a), len(b))
	}
}
