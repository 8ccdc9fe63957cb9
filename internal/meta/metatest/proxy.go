package metatest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

func testProxyFiles(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := &meta.Repo{Name: "cache", Format: meta.FormatRPM, Kind: meta.KindProxy, Config: []byte(`{"upstreams":["http://example.com/"]}`)}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatalf("CreateRepo: %v", err)
	}
	other := createRepo(t, s, "other")
	if _, err := s.GetProxyFile(ctx, r.ID, "repodata/repomd.xml"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("GetProxyFile on an empty cache: %v, want ErrNotFound", err)
	}
	fetched := time.Date(2025, 3, 4, 5, 6, 7, 891011000, time.UTC)
	files := []meta.ProxyFile{
		{Path: "repodata/abc-primary.xml.gz", Digest: digestOf("primary"), Size: 321, ContentType: "application/gzip",
			Source: "http://example.com/", FetchedAt: fetched, Fragments: digestOf("fragments")},
		{Path: "repodata/repomd.xml", Digest: digestOf("repomd"), Size: 1234, ContentType: "application/xml",
			ETag: `"5f-1a"`, LastModified: "Tue, 04 Mar 2025 05:06:07 GMT", Source: "http://example.com/", FetchedAt: fetched, UsedAt: fetched},
	}
	start := lastSeq(t, s)
	if err := s.PutProxyFiles(ctx, r.ID, files); err != nil {
		t.Fatalf("PutProxyFiles: %v", err)
	}
	checkNoEventSince(t, s, start, "caching proxy files") // cache state is not in the feed
	for _, want := range files {
		got, err := s.GetProxyFile(ctx, r.ID, want.Path)
		if err != nil {
			t.Fatalf("GetProxyFile(%s): %v", want.Path, err)
		}
		want.RepoID = r.ID
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("GetProxyFile(%s) = %+v, want %+v", want.Path, *got, want)
		}
	}
	if _, err := s.GetProxyFile(ctx, other.ID, files[0].Path); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("GetProxyFile in another repository: %v, want ErrNotFound", err)
	}

	// Replacing a pointer file's record (a new upstream version).
	repl := files[1]
	repl.Digest, repl.Size, repl.ETag = digestOf("repomd2"), 1240, `"60-1b"`
	if err := s.PutProxyFiles(ctx, r.ID, []meta.ProxyFile{repl}); err != nil {
		t.Fatalf("PutProxyFiles (replace): %v", err)
	}
	if got, err := s.GetProxyFile(ctx, r.ID, repl.Path); err != nil || got.Digest != repl.Digest || got.ETag != repl.ETag || got.Size != 1240 {
		t.Errorf("after replacing: %+v, %v; want digest %s etag %s", got, err, repl.Digest, repl.ETag)
	}

	// Touch moves only the times it is given.
	later := fetched.Add(time.Hour)
	if err := s.TouchProxyFile(ctx, r.ID, repl.Path, later, time.Time{}); err != nil {
		t.Fatalf("TouchProxyFile: %v", err)
	}
	got, err := s.GetProxyFile(ctx, r.ID, repl.Path)
	if err != nil || !got.FetchedAt.Equal(later) || !got.UsedAt.Equal(fetched) {
		t.Errorf("after TouchProxyFile(fetched): %+v, %v; want fetched %v used %v", got, err, later, fetched)
	}
	if err := s.TouchProxyFile(ctx, r.ID, repl.Path, time.Time{}, later.Add(time.Minute)); err != nil {
		t.Fatalf("TouchProxyFile: %v", err)
	}
	if got, err := s.GetProxyFile(ctx, r.ID, repl.Path); err != nil || !got.FetchedAt.Equal(later) || !got.UsedAt.Equal(later.Add(time.Minute)) {
		t.Errorf("after TouchProxyFile(used): %+v, %v", got, err)
	}
	if err := s.TouchProxyFile(ctx, r.ID, "nope", later, later); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("TouchProxyFile of a missing record: %v, want ErrNotFound", err)
	}

	// The cached blobs are referenced, so GC keeps them.
	for _, d := range []string{files[0].Digest, repl.Digest, files[0].Fragments} {
		if ref, err := s.DigestReferenced(ctx, d); err != nil || !ref {
			t.Errorf("DigestReferenced(cached %s) = %v, %v; want true", d, ref, err)
		}
	}
	walked := map[string]bool{}
	if err := s.WalkReferences(ctx, func(d string) error { walked[d] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !walked[files[0].Digest] || !walked[repl.Digest] || !walked[files[0].Fragments] {
		t.Errorf("WalkReferences misses cached blobs: %v", walked)
	}

	var paths []string
	if err := s.ListProxyFiles(ctx, r.ID, func(f *meta.ProxyFile) error { paths = append(paths, f.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(paths, []string{files[0].Path, files[1].Path}) {
		t.Errorf("ListProxyFiles = %v", paths)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.ListProxyFiles(ctx, r.ID, func(*meta.ProxyFile) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("ListProxyFiles with a failing fn: %v after %d calls; want stop after 1", err, n)
	}

	if err := s.DeleteProxyFile(ctx, r.ID, files[0].Path); err != nil {
		t.Fatalf("DeleteProxyFile: %v", err)
	}
	if err := s.DeleteProxyFile(ctx, r.ID, files[0].Path); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("DeleteProxyFile twice: %v, want ErrNotFound", err)
	}
	for _, d := range []string{files[0].Digest, files[0].Fragments} {
		if ref, err := s.DigestReferenced(ctx, d); err != nil || ref {
			t.Errorf("DigestReferenced(%s) after delete = %v, %v; want false", d, ref, err)
		}
	}
	if err := s.PutProxyFiles(ctx, 1<<40, files); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("PutProxyFiles of a missing repository: %v, want ErrNotFound", err)
	}

	// Deleting the repository drops its cache records.
	if err := s.DeleteRepo(ctx, r.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetProxyFile(ctx, r.ID, repl.Path); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("GetProxyFile after DeleteRepo: %v, want ErrNotFound", err)
	}
}
