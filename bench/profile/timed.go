package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// timers sums the wall time of named calls.
type timers struct {
	mu sync.Mutex
	m  map[string]*timer
}

type timer struct {
	n     int
	total time.Duration
	max   time.Duration
	bytes int64
}

func newTimers() *timers { return &timers{m: map[string]*timer{}} }

func (t *timers) reset() {
	t.mu.Lock()
	t.m = map[string]*timer{}
	t.mu.Unlock()
}

func (t *timers) add(name string, d time.Duration, bytes int64) {
	t.mu.Lock()
	x := t.m[name]
	if x == nil {
		x = &timer{}
		t.m[name] = x
	}
	x.n++
	x.total += d
	x.max = max(x.max, d)
	x.bytes += bytes
	t.mu.Unlock()
}

func (t *timers) since(name string, start time.Time) { t.add(name, time.Since(start), 0) }

// print lists the calls by total time; per > 0 also shows the time per
// upload.
func (t *timers) print(w io.Writer, phase string, per int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.m))
	for k := range t.m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return t.m[names[i]].total > t.m[names[j]].total })
	fmt.Fprintf(w, "%-34s %7s %11s %11s %11s", phase+": call", "count", "total", "mean", "max")
	if per > 0 {
		fmt.Fprintf(w, " %11s", "per upload")
	}
	fmt.Fprintln(w)
	for _, k := range names {
		x := t.m[k]
		fmt.Fprintf(w, "%-34s %7d %11s %11s %11s", k, x.n, x.total.Round(time.Microsecond), (x.total / time.Duration(x.n)).Round(time.Microsecond), x.max.Round(time.Microsecond))
		if per > 0 {
			fmt.Fprintf(w, " %11s", (x.total / time.Duration(per)).Round(time.Microsecond))
		}
		if x.bytes > 0 {
			fmt.Fprintf(w, "  %.1f MB", float64(x.bytes)/1e6)
		}
		fmt.Fprintln(w)
	}
}

// timedBlobs times blob-store calls; writers time their writes and commit.
type timedBlobs struct {
	blob.Store
	t *timers
}

func (b *timedBlobs) Create(ctx context.Context, limit int64) (blob.Writer, error) {
	defer b.t.since("blob.Create", time.Now())
	w, err := b.Store.Create(ctx, limit)
	if err != nil {
		return nil, err
	}
	return &timedWriter{Writer: w, t: b.t}, nil
}

func (b *timedBlobs) Open(ctx context.Context, d blob.Digest) (blob.Reader, error) {
	defer b.t.since("blob.Open", time.Now())
	return b.Store.Open(ctx, d)
}

func (b *timedBlobs) Stat(ctx context.Context, d blob.Digest) (blob.Info, error) {
	defer b.t.since("blob.Stat", time.Now())
	return b.Store.Stat(ctx, d)
}

type timedWriter struct {
	blob.Writer
	t       *timers
	written time.Duration
}

func (w *timedWriter) Write(p []byte) (int, error) {
	s := time.Now()
	n, err := w.Writer.Write(p)
	w.written += time.Since(s)
	return n, err
}

func (w *timedWriter) Commit(ctx context.Context, want blob.Digest) (blob.Info, error) {
	w.t.add("blob.Writer.Write (hash+write)", w.written, w.Writer.Size())
	s := time.Now()
	info, err := w.Writer.Commit(ctx, want)
	w.t.add("blob.Writer.Commit (fsync+rename)", time.Since(s), 0)
	return info, err
}

func (w *timedWriter) Cancel(ctx context.Context) error {
	w.t.add("blob.Writer.Write (hash+write)", w.written, w.Writer.Size())
	return w.Writer.Cancel(ctx)
}

// timedMeta times the metadata calls of the upload and publish paths.
type timedMeta struct {
	meta.Store
	t *timers
}

func (m *timedMeta) GetRepo(ctx context.Context, name string) (*meta.Repo, error) {
	defer m.t.since("meta.GetRepo", time.Now())
	return m.Store.GetRepo(ctx, name)
}

func (m *timedMeta) AddPackage(ctx context.Context, p *meta.Package) (*meta.Package, error) {
	defer m.t.since("meta.AddPackage", time.Now())
	return m.Store.AddPackage(ctx, p)
}

func (m *timedMeta) FindPackage(ctx context.Context, repoID int64, id meta.Identity) (*meta.Package, error) {
	defer m.t.since("meta.FindPackage", time.Now())
	return m.Store.FindPackage(ctx, repoID, id)
}

func (m *timedMeta) PackageChanges(ctx context.Context, repoID, seq, upTo int64) ([]meta.PackageChange, error) {
	defer m.t.since("meta.PackageChanges", time.Now())
	return m.Store.PackageChanges(ctx, repoID, seq, upTo)
}

func (m *timedMeta) LivePackages(ctx context.Context, repoID, upTo int64, fn func(*meta.Package) error) error {
	defer m.t.since("meta.LivePackages", time.Now())
	return m.Store.LivePackages(ctx, repoID, upTo, fn)
}

func (m *timedMeta) Fragments(ctx context.Context, repoID int64, ids []int64) (map[int64]map[string][]byte, error) {
	defer m.t.since("meta.Fragments", time.Now())
	return m.Store.Fragments(ctx, repoID, ids)
}

func (m *timedMeta) Publish(ctx context.Context, g *meta.Generation, prev int64) (int64, error) {
	defer m.t.since("meta.Publish", time.Now())
	return m.Store.Publish(ctx, g, prev)
}

func (m *timedMeta) GetGeneration(ctx context.Context, repoID, number int64) (*meta.Generation, error) {
	defer m.t.since("meta.GetGeneration", time.Now())
	return m.Store.GetGeneration(ctx, repoID, number)
}

func (m *timedMeta) ListGenerations(ctx context.Context, repoID int64) ([]meta.Generation, error) {
	defer m.t.since("meta.ListGenerations", time.Now())
	return m.Store.ListGenerations(ctx, repoID)
}

func (m *timedMeta) LastSeq(ctx context.Context) (int64, error) {
	defer m.t.since("meta.LastSeq", time.Now())
	return m.Store.LastSeq(ctx)
}

func (m *timedMeta) PackageByPath(ctx context.Context, repoID int64, path string, from, to int64) (*meta.Package, error) {
	defer m.t.since("meta.PackageByPath", time.Now())
	return m.Store.PackageByPath(ctx, repoID, path, from, to)
}

// timedFormat times the format's calls.
type timedFormat struct {
	format.Format
	t *timers
}

func (f *timedFormat) Parse(r io.Reader, filename string, params format.UploadParams) (*format.Package, error) {
	defer f.t.since("format.Parse (+upload read)", time.Now())
	return f.Format.Parse(r, filename, params)
}

func (f *timedFormat) Render(p *format.Package, fi format.FileInfo) (map[string][]byte, error) {
	defer f.t.since("format.Render", time.Now())
	return f.Format.Render(p, fi)
}

func (f *timedFormat) Streams(entries []*format.Entry, opts format.PublishOptions) []format.Stream {
	defer f.t.since("format.Streams", time.Now())
	return f.Format.Streams(entries, opts)
}

func (f *timedFormat) Finish(built []format.Built, opts format.PublishOptions) ([]format.File, error) {
	defer f.t.since("format.Finish", time.Now())
	return f.Format.Finish(built, opts)
}
