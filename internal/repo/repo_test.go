package repo

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/meta/sqlite"
)

// lineFormat is a tiny test format: a package file is "name version\n"
// followed by any payload; the index is one gzip stream of "name version\n"
// lines plus an "INDEX" pointer file naming its digest.
type lineFormat struct{}

func (lineFormat) Name() string { return "line" }

func (lineFormat) Parse(r io.Reader, filename string, _ format.UploadParams) (*format.Package, error) {
	var buf [64]byte
	n, _ := io.ReadFull(r, buf[:])
	line, _, ok := bytes.Cut(buf[:n], []byte("\n"))
	f := strings.Fields(string(line))
	if !ok || len(f) != 2 {
		return nil, fmt.Errorf("%w: first line must be 'name version'", format.ErrInvalidPackage)
	}
	return &format.Package{Identity: format.Identity{Name: f[0], Version: f[1], Arch: "noarch"}, Path: "p/" + f[0] + "-" + f[1]}, nil
}

func (lineFormat) Scope(*format.Package, format.UploadParams) (string, error) { return "", nil }

func (lineFormat) Render(p *format.Package, fi format.FileInfo) (map[string][]byte, error) {
	return map[string][]byte{"idx": []byte(p.Name + " " + p.Version + " " + fi.SHA256 + "\n")}, nil
}

func (lineFormat) Compare(a, b format.Identity) int { return strings.Compare(a.Version, b.Version) }

func (lineFormat) Streams([]*format.Entry, format.PublishOptions) []format.Stream {
	return []format.Stream{{
		Name: "idx", Fragment: "idx", Encodings: []format.Encoding{format.Gzip},
		Header: func(int) []byte { return []byte("index\n") },
		Footer: []byte("end\n"),
	}}
}

func (lineFormat) Finish(built []format.Built, _ format.PublishOptions) ([]format.File, error) {
	gz := built[0].Encoded[format.Gzip]
	return []format.File{
		{Path: "idx/" + gz.SHA256 + ".gz", SHA256: gz.SHA256, Size: gz.Size},
		{Path: "INDEX", Data: []byte(gz.SHA256 + " " + built[0].Raw.SHA256 + "\n")},
	}, nil
}

type testEnv struct {
	svc   *Service
	blobs *fsblob.Store
	meta  meta.Store
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	return newEnvOpts(t, Options{MaxUploadSize: 1 << 20, GenerationGrace: time.Hour})
}

func newEnvOpts(t *testing.T, opts Options) *testEnv {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fsblob.Open(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	m, err := sqlite.Open(context.Background(), dir+"/db")
	if err != nil {
		t.Fatal(err)
	}
	svc := New(blobs, m, []format.Format{lineFormat{}}, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); m.Close(); blobs.Close() })
	if _, err := svc.CreateRepo(context.Background(), RepoSpec{Name: "r", Format: "line"}); err != nil {
		t.Fatal(err)
	}
	return &testEnv{svc: svc, blobs: blobs, meta: m}
}

func (e *testEnv) upload(name, version, payload string, wait bool) (*Result, error) {
	return e.svc.Ingest(context.Background(), Upload{Repo: "r", Filename: name + ".pkg", Body: strings.NewReader(name + " " + version + "\n" + payload), Wait: wait})
}

// index returns the decoded index of the current generation.
func (e *testEnv) index(t *testing.T) string {
	t.Helper()
	obj, err := e.svc.Lookup(context.Background(), "r", "INDEX")
	if err != nil {
		t.Fatal(err)
	}
	b, err := blob.ReadAll(context.Background(), e.blobs, blob.Digest(obj.Digest))
	if err != nil {
		t.Fatal(err)
	}
	gzDigest, _, _ := strings.Cut(string(b), " ")
	obj, err = e.svc.Lookup(context.Background(), "r", "idx/"+gzDigest+".gz")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := e.svc.Open(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	gzb, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if blob.DigestOf(gzb) != blob.Digest(obj.Digest) || int64(len(gzb)) != obj.Size {
		t.Fatalf("%s: content does not match its digest or size", obj.Path)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzb))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestUploadVisibleOnReturn(t *testing.T) {
	e := newEnv(t)
	res, err := e.upload("a", "1", "payload", true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Generation < 2 {
		t.Fatalf("created=%v generation=%d", res.Created, res.Generation)
	}
	idx := e.index(t)
	if !strings.Contains(idx, "a 1 "+res.Package.Digest) || !strings.HasPrefix(idx, "index\n") || !strings.HasSuffix(idx, "end\n") {
		t.Fatalf("index after upload:\n%s", idx)
	}
	obj, err := e.svc.Lookup(context.Background(), "r", "p/a-1")
	if err != nil || !obj.Package || obj.Digest != res.Package.Digest {
		t.Fatalf("package lookup: %+v %v", obj, err)
	}
}

func TestIdenticalAndConflict(t *testing.T) {
	e := newEnv(t)
	if _, err := e.upload("a", "1", "x", true); err != nil {
		t.Fatal(err)
	}
	res, err := e.upload("a", "1", "x", true)
	if err != nil || res.Created {
		t.Fatalf("identical re-upload: %+v %v", res, err)
	}
	_, err = e.upload("a", "1", "other bytes", true)
	var ce *ConflictError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ce) || ce.Existing.Path != "p/a-1" {
		t.Fatalf("conflict: %v", err)
	}
	n := 0
	_ = e.blobs.Walk(context.Background(), func(blob.Info) error { n++; return nil })
	// One package blob plus the index files of the generations.
	var pkgBlobs int
	_ = e.blobs.Walk(context.Background(), func(i blob.Info) error {
		b, _ := blob.ReadAll(context.Background(), e.blobs, i.Digest)
		if bytes.HasPrefix(b, []byte("a 1\n")) {
			pkgBlobs++
		}
		return nil
	})
	if pkgBlobs != 1 {
		t.Fatalf("package blobs stored: %d, want 1 (the conflicting upload must leave nothing)", pkgBlobs)
	}
	if c, _ := e.blobs.TempCount(); c != 0 {
		t.Fatalf("%d temp files left", c)
	}
}

func TestInvalidAndTooLargeLeaveNothing(t *testing.T) {
	e := newEnv(t)
	before := blobCount(t, e)
	_, err := e.upload("justonefield", "", "", true)
	if !errors.Is(err, format.ErrInvalidPackage) {
		t.Fatalf("invalid: %v", err)
	}
	_, err = e.upload("big", "1", strings.Repeat("x", 2<<20), true)
	if !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if got := blobCount(t, e); got != before {
		t.Fatalf("blobs %d -> %d", before, got)
	}
	if c, _ := e.blobs.TempCount(); c != 0 {
		t.Fatalf("%d temp files left", c)
	}
	r, _ := e.meta.GetRepo(context.Background(), "r")
	pk, _ := e.meta.ListPackages(context.Background(), r.ID, meta.PackageQuery{})
	if len(pk) != 0 {
		t.Fatalf("rows left: %v", pk)
	}
}

func blobCount(t *testing.T, e *testEnv) int {
	n := 0
	if err := e.blobs.Walk(context.Background(), func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGroupCommit(t *testing.T) {
	e := newEnv(t)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.upload(fmt.Sprintf("p%03d", i), "1", "x", true); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	idx := e.index(t)
	for i := 0; i < n; i++ {
		if !strings.Contains(idx, fmt.Sprintf("p%03d 1 ", i)) {
			t.Fatalf("p%03d missing from index", i)
		}
	}
	r, _ := e.meta.GetRepo(context.Background(), "r")
	if r.CurrentGeneration >= n/2 {
		t.Fatalf("%d generations for %d uploads: group commit is not folding", r.CurrentGeneration, n)
	}
	t.Logf("%d uploads in %d generations", n, r.CurrentGeneration)
}

func TestOldGenerationStaysReadable(t *testing.T) {
	e := newEnv(t)
	if _, err := e.upload("a", "1", "x", true); err != nil {
		t.Fatal(err)
	}
	old, err := e.svc.Lookup(context.Background(), "r", "INDEX")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := blob.ReadAll(context.Background(), e.blobs, blob.Digest(old.Digest))
	oldGz, _, _ := strings.Cut(string(b), " ")
	if _, err := e.upload("b", "1", "x", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Lookup(context.Background(), "r", "idx/"+oldGz+".gz"); err != nil {
		t.Fatalf("file named by the previous generation is gone: %v", err)
	}
}

// readParts returns the concatenation of an assembled output's parts.
func readParts(t *testing.T, blobs blob.Store, b format.Blob) []byte {
	t.Helper()
	rd, err := OpenParts(context.Background(), blobs, b.Parts)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if blob.DigestOf(data) != blob.Digest(b.SHA256) || int64(len(data)) != b.Size {
		t.Fatal("assembled parts do not match the digest or size the assembler reported")
	}
	return data
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAssemblyWorkFollowsTheChange(t *testing.T) {
	entry := func(id int) *format.Entry {
		return &format.Entry{ID: int64(id), Path: fmt.Sprintf("p/%05d", id), Fragments: map[string][]byte{"idx": []byte(fmt.Sprintf("line %d %s\n", id, strings.Repeat("x", id%50)))}}
	}
	var entries []*format.Entry
	for i := 1; i <= 5000; i++ {
		entries = append(entries, entry(i))
	}
	blobs, err := fsblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := lineFormat{}.Streams(nil, format.PublishOptions{})[0]
	a := newAssembler(blobs, nil)
	check := func(what string) format.Built {
		t.Helper()
		a.encoded, a.hashed = 0, 0
		b, err := a.build(context.Background(), st, entries)
		if err != nil {
			t.Fatal(err)
		}
		a.sweep()
		var want bytes.Buffer
		want.Write(st.Header(len(entries)))
		for _, e := range entries {
			want.Write(e.Fragments["idx"])
		}
		want.Write(st.Footer)
		raw := gunzip(t, readParts(t, blobs, b.Encoded[format.Gzip]))
		if !bytes.Equal(raw, want.Bytes()) {
			t.Fatalf("%s: assembled stream differs from header+fragments+footer", what)
		}
		if blob.DigestOf(raw) != blob.Digest(b.Raw.SHA256) || b.Raw.Size != int64(len(raw)) {
			t.Fatalf("%s: decoded digest or size wrong", what)
		}
		return b
	}
	first := check("first build")
	total, fullHash := a.encoded, a.hashed

	// An upload appends: one chunk is encoded again and only the tail is
	// hashed again.
	entries = append(entries, entry(5001))
	second := check("append")
	if a.encoded > 1 || a.hashed > fullHash/10 || total < 10 {
		t.Fatalf("append: encoded %d of %d chunks, hashed %d of %d bytes", a.encoded, total, a.hashed, fullHash)
	}
	if first.Raw.SHA256 == second.Raw.SHA256 {
		t.Fatal("digest did not change")
	}
	// Removing a package in the middle encodes one chunk again.
	entries = append(entries[:2500], entries[2501:]...)
	check("remove")
	if a.encoded > 1 {
		t.Fatalf("remove: encoded %d chunks", a.encoded)
	}
	// A rebuild from scratch (another assembler) gives the same bytes.
	again := newAssembler(blobs, nil)
	b, err := again.build(context.Background(), st, entries)
	if err != nil {
		t.Fatal(err)
	}
	last := check("unchanged")
	if b.Encoded[format.Gzip].SHA256 != last.Encoded[format.Gzip].SHA256 || a.encoded != 0 {
		t.Fatalf("rebuild differs from the incremental result, or an unchanged build encoded %d chunks", a.encoded)
	}
}

func TestRetentionKeepsTheNewestGenerations(t *testing.T) {
	e := newEnvOpts(t, Options{MaxUploadSize: 1 << 20, GenerationGrace: 0, KeepGenerations: 3})
	ctx := context.Background()
	var indexes []string // the INDEX file of each generation, oldest first
	for i := 0; i < 6; i++ {
		if _, err := e.upload(fmt.Sprintf("p%d", i), "1", "x", true); err != nil {
			t.Fatal(err)
		}
		obj, err := e.svc.Lookup(ctx, "r", "INDEX")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := blob.ReadAll(ctx, e.blobs, blob.Digest(obj.Digest))
		gz, _, _ := strings.Cut(string(b), " ")
		indexes = append(indexes, "idx/"+gz+".gz")
	}
	if err := e.svc.PruneGenerations(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := e.meta.GetRepo(ctx, "r")
	gens, err := e.meta.ListGenerations(ctx, r.ID)
	if err != nil || len(gens) != 3 || gens[0].Number != r.CurrentGeneration {
		t.Fatalf("after pruning: %d generations (%v), want the newest 3 with the current first", len(gens), err)
	}
	// Files of the 3 newest generations are still served, older ones not.
	for i, p := range indexes {
		_, err := e.svc.Lookup(ctx, "r", p)
		if kept := i >= len(indexes)-3; kept != (err == nil) {
			t.Errorf("generation file %d (%s): lookup error %v, want kept=%v", i, p, err, kept)
		}
	}
}

func TestCancelledLookupDoesNotHideAGeneration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var first string
	for i := 0; i < 6; i++ {
		if _, err := e.upload(fmt.Sprintf("p%d", i), "1", "x", true); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			obj, err := e.svc.Lookup(ctx, "r", "INDEX")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := blob.ReadAll(ctx, e.blobs, blob.Digest(obj.Digest))
			gz, _, _ := strings.Cut(string(b), " ")
			first = "idx/" + gz + ".gz"
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = e.svc.Lookup(cancelled, "r", first) // a client that gave up
	obj, err := e.svc.Lookup(ctx, "r", first)
	if err != nil {
		t.Fatalf("file of an old generation after a cancelled lookup: %v", err)
	}
	if obj.Generation >= 6 || len(obj.Parts) == 0 {
		t.Fatalf("found in generation %d with %d parts, want an old generation's parts", obj.Generation, len(obj.Parts))
	}
	if _, err := e.svc.Lookup(ctx, "r", "idx/missing.gz"); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}

// failingBlobs fails every commit while fail is set, but for blobs that
// begin with spare (the package under test). It hides fsblob's Put, so every
// write goes through Create and Commit.
type failingBlobs struct {
	blob.Store
	fail  atomic.Bool
	spare string
}

type failingWriter struct {
	blob.Writer
	s    *failingBlobs
	head []byte
}

func (b *failingBlobs) Create(ctx context.Context, limit int64) (blob.Writer, error) {
	w, err := b.Store.Create(ctx, limit)
	if err != nil {
		return nil, err
	}
	return &failingWriter{Writer: w, s: b}, nil
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(w.head) < 64 {
		w.head = append(w.head, p[:min(len(p), 64-len(w.head))]...)
	}
	return w.Writer.Write(p)
}

func (w *failingWriter) Commit(ctx context.Context, want blob.Digest) (blob.Info, error) {
	if w.s.fail.Load() && !strings.HasPrefix(string(w.head), w.s.spare) {
		_ = w.Writer.Cancel(ctx)
		return blob.Info{}, errors.New("disk full (test)")
	}
	return w.Writer.Commit(ctx, want)
}

// TestPublishAfterFailedStore: index parts are stored in the background
// while a publish goes on; when one of them fails, no generation names it,
// and the next publish stores what it names (the failed publish's chunk
// cache must not be trusted).
func TestPublishAfterFailedStore(t *testing.T) {
	dir := t.TempDir()
	fs, err := fsblob.Open(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	blobs := &failingBlobs{Store: fs, spare: "b 1\n"}
	m, err := sqlite.Open(context.Background(), dir+"/db")
	if err != nil {
		t.Fatal(err)
	}
	svc := New(blobs, m, []format.Format{lineFormat{}}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		Options{MaxUploadSize: 1 << 20, GenerationGrace: time.Hour})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); m.Close(); fs.Close() })
	if _, err := svc.CreateRepo(context.Background(), RepoSpec{Name: "r", Format: "line"}); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{svc: svc, blobs: fs, meta: m}
	if _, err := e.upload("a", "1", "first", true); err != nil {
		t.Fatal(err)
	}
	r, err := m.GetRepo(context.Background(), "r")
	if err != nil {
		t.Fatal(err)
	}
	before := r.CurrentGeneration

	// b's package is stored; the index parts of its publish are not.
	blobs.fail.Store(true)
	if _, err := e.upload("b", "1", "second", true); err == nil {
		t.Fatal("publish while the blob store fails: no error")
	}
	if r, err := m.GetRepo(context.Background(), "r"); err != nil || r.CurrentGeneration != before {
		t.Fatalf("generation after failed stores: %d (%v), want %d", r.CurrentGeneration, err, before)
	}

	blobs.fail.Store(false)
	res, err := e.upload("d", "1", "fourth", true)
	if err != nil {
		t.Fatalf("upload after the store recovered: %v", err)
	}
	idx := e.index(t)
	for _, name := range []string{"a 1", "b 1", "d 1"} {
		if !strings.Contains(idx, name) {
			t.Errorf("index after recovery lacks %q:\n%s", name, idx)
		}
	}
	g, err := m.GetGeneration(context.Background(), res.Package.RepoID, res.Generation)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range g.Files {
		names := f.Parts
		if len(names) == 0 {
			names = []string{f.Digest}
		}
		for _, d := range names {
			if _, err := fs.Stat(context.Background(), blob.Digest(d)); err != nil {
				t.Errorf("generation %d names %s (%s), which is not stored: %v", g.Number, d, f.Path, err)
			}
		}
	}
}

// TestOldGenerationReadableAcrossViewDrop: the view of a repository is
// dropped (a remote generation event) while a publish is replacing it;
// the files of the previous generation stay readable afterwards (the
// publish once left a view of its generation alone, and they answered
// 404 until the next one).
func TestOldGenerationReadableAcrossViewDrop(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.upload("a", "1", "x", true); err != nil {
		t.Fatal(err)
	}
	old, err := e.svc.Lookup(ctx, "r", "INDEX")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := blob.ReadAll(ctx, e.blobs, blob.Digest(old.Digest))
	oldGz, _, _ := strings.Cut(string(b), " ")
	dropped := false
	e.svc.views.beforeLock = func() {
		if !dropped {
			dropped = true
			e.svc.views.drop("r")
		}
	}
	if _, err := e.upload("b", "1", "x", true); err != nil {
		t.Fatal(err)
	}
	if !dropped {
		t.Fatal("the publish did not replace the view")
	}
	if _, err := e.svc.Lookup(ctx, "r", "idx/"+oldGz+".gz"); err != nil {
		t.Fatalf("file named by the previous generation, after a drop during the publish: %v", err)
	}
}
