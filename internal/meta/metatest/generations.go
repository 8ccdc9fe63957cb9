package metatest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// genFiles returns n distinct files for generation tag.
func genFiles(tag string, n int) []meta.GenFile {
	files := make([]meta.GenFile, n)
	for i := range files {
		files[i] = meta.GenFile{
			Path:        fmt.Sprintf("repodata/%04d-%s-primary.xml.gz", n-i, tag),
			Digest:      digestOf(fmt.Sprintf("%s/%d", tag, i)),
			Size:        int64(i) * 1000,
			ContentType: "application/gzip",
		}
	}
	return files
}

// sameFiles compares generation files regardless of order.
func sameFiles(t *testing.T, what string, got, want []meta.GenFile) {
	t.Helper()
	byPath := func(a, b meta.GenFile) int { return cmp.Compare(a.Path, b.Path) }
	g, w := slices.SortedFunc(slices.Values(got), byPath), slices.SortedFunc(slices.Values(want), byPath)
	same := func(a, b meta.GenFile) bool {
		return a.Path == b.Path && a.Digest == b.Digest && a.Size == b.Size &&
			a.ContentType == b.ContentType && slices.Equal(a.Parts, b.Parts)
	}
	if !slices.EqualFunc(g, w, same) {
		t.Errorf("%s: %d files, want %d, or they differ", what, len(got), len(want))
	}
}

func testPublish(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "pub")
	if gens, err := s.ListGenerations(ctx, r.ID); err != nil || len(gens) != 0 {
		t.Fatalf("ListGenerations before publishing = %v, %v; want none", gens, err)
	}
	addPackage(t, s, newPackage(r.ID, "a", "1"))

	cases := []struct {
		name  string
		files []meta.GenFile
	}{
		{"first", []meta.GenFile{
			{Path: "repodata/repomd.xml", Digest: digestOf("repomd"), Size: 3021, ContentType: "application/xml"},
			{Path: "repodata/x-primary.xml.gz", Digest: digestOf("primary"), Size: 0, ContentType: "application/gzip"},
			{Path: "repodata/y-filelists.xml.gz", Digest: digestOf("filelists"), Size: 90, ContentType: "application/gzip",
				Parts: []string{digestOf("head"), digestOf("chunk"), digestOf("foot")}},
		}},
		{"no files", nil},
		{"many files", genFiles("many", 1500)},
		{"same digest twice", []meta.GenFile{
			{Path: "dists/stable/by-hash/SHA256/" + digestOf("p"), Digest: digestOf("p"), Size: 10, ContentType: "text/plain"},
			{Path: "dists/stable/main/binary-amd64/Packages", Digest: digestOf("p"), Size: 10, ContentType: "text/plain"},
		}},
	}
	var published []meta.Generation
	for i, tc := range cases {
		prev := int64(i)
		g := &meta.Generation{RepoID: r.ID, Seq: lastSeq(t, s), Files: tc.files}
		seq, err := s.Publish(ctx, g, prev)
		if err != nil {
			t.Fatalf("%s: Publish: %v", tc.name, err)
		}
		if g.Number != prev+1 || !recent(g.CreatedAt) {
			t.Errorf("%s: Publish set Number %d CreatedAt %v, want %d and now", tc.name, g.Number, g.CreatedAt, prev+1)
		}
		if seq <= g.Seq || seq != lastSeq(t, s) {
			t.Errorf("%s: Publish returned sequence %d, want the last one, above the generation's %d", tc.name, seq, g.Seq)
		}
		rr, err := s.GetRepo(ctx, r.Name)
		if err != nil || rr.CurrentGeneration != g.Number {
			t.Errorf("%s: repository after Publish = %+v, %v; want CurrentGeneration %d", tc.name, rr, err, g.Number)
		}

		// A publisher that missed this generation is refused, and
		// nothing changes.
		for _, stale := range []int64{prev, prev + 5} {
			before := lastSeq(t, s)
			_, err := s.Publish(ctx, &meta.Generation{RepoID: r.ID, Seq: before, Files: genFiles("stale", 2)}, stale)
			wantErr(t, fmt.Sprintf("%s: Publish with prev %d", tc.name, stale), err, meta.ErrStale)
			checkNoEventSince(t, s, before, "a stale Publish")
		}
		published = append(published, *g)
	}

	for _, want := range published {
		got, err := s.GetGeneration(ctx, r.ID, want.Number)
		if err != nil {
			t.Fatalf("GetGeneration(%d): %v", want.Number, err)
		}
		if got.RepoID != r.ID || got.Number != want.Number || got.Seq != want.Seq || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("GetGeneration(%d) = %+v, want %+v", want.Number, got, want)
		}
		sameFiles(t, fmt.Sprintf("GetGeneration(%d)", want.Number), got.Files, want.Files)
	}

	gens, err := s.ListGenerations(ctx, r.ID)
	if err != nil || len(gens) != len(published) {
		t.Fatalf("ListGenerations = %d generations, %v; want %d", len(gens), err, len(published))
	}
	for i, got := range gens {
		want := published[len(published)-1-i] // newest first
		if got.RepoID != r.ID || got.Number != want.Number || got.Seq != want.Seq ||
			!got.CreatedAt.Equal(want.CreatedAt) || len(got.Files) != 0 {
			t.Errorf("ListGenerations[%d] = %+v, want number %d, seq %d, no files", i, got, want.Number, want.Seq)
		}
	}
	if _, err := s.GetGeneration(ctx, r.ID, int64(len(published)+1)); !isNotFound(err) {
		t.Errorf("GetGeneration(next): %v, want ErrNotFound", err)
	}
}

// testPublishConcurrent checks that of publishers racing from the same
// current generation, exactly one wins.
func testPublishConcurrent(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "race")
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			g := &meta.Generation{RepoID: r.ID, Files: genFiles(fmt.Sprint("race", i), 3)}
			_, errs[i] = s.Publish(ctx, g, 0)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, meta.ErrStale):
			t.Errorf("publisher %d: %v, want success or ErrStale", i, err)
		}
	}
	gens, err := s.ListGenerations(ctx, r.ID)
	if won != 1 || err != nil || len(gens) != 1 {
		t.Errorf("%d of %d racing publishers won, %d generations (%v); want exactly one", won, n, len(gens), err)
	}
}

func testPruneGenerations(t *testing.T, s meta.Store) {
	ctx := t.Context()
	const count = 6
	type clock int
	const (
		past clock = iota
		fourth
		future
	)
	cases := []struct {
		name   string
		before clock
		keep   int
	}{
		{"nothing old enough", past, 0},
		{"older than the fourth", fourth, 0},
		{"older than the fourth, keep 4", fourth, 4},
		{"keep 2", future, 2},
		{"keep 0 keeps the current", future, 0},
		{"keep more than there are", future, 10},
	}
	for i, tc := range cases {
		r := createRepo(t, s, fmt.Sprintf("prune-%d", i))
		var gens []meta.Generation
		for n := range int64(count) {
			g := &meta.Generation{RepoID: r.ID, Seq: lastSeq(t, s), Files: genFiles(fmt.Sprint(r.Name, n), 2)}
			if _, err := s.Publish(ctx, g, n); err != nil {
				t.Fatalf("%s: Publish: %v", tc.name, err)
			}
			gens = append(gens, *g)
			waitPast(g.CreatedAt)
		}
		before := map[clock]time.Time{
			past:   gens[0].CreatedAt.Add(-time.Hour),
			fourth: gens[3].CreatedAt,
			future: time.Now().Add(time.Hour),
		}[tc.before]

		// The contract, applied to the times the store reported.
		var want, kept []int64
		for _, g := range gens {
			newest := g.Number > int64(count-tc.keep)
			if g.CreatedAt.Before(before) && !newest && g.Number != count {
				want = append(want, g.Number)
			} else {
				kept = append(kept, g.Number)
			}
		}

		got, err := s.PruneGenerations(ctx, r.ID, before, tc.keep)
		if err != nil {
			t.Fatalf("%s: PruneGenerations: %v", tc.name, err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: PruneGenerations deleted %v, want %v", tc.name, got, want)
		}
		list, err := s.ListGenerations(ctx, r.ID)
		if err != nil {
			t.Fatalf("%s: ListGenerations: %v", tc.name, err)
		}
		var left []int64
		for _, g := range list {
			left = append(left, g.Number)
		}
		slices.Reverse(left)
		if !slices.Equal(left, kept) {
			t.Errorf("%s: generations left %v, want %v", tc.name, left, kept)
		}
		for _, g := range gens {
			_, err := s.GetGeneration(ctx, r.ID, g.Number)
			deleted := slices.Contains(want, g.Number)
			if deleted != isNotFound(err) || (!deleted && err != nil) {
				t.Errorf("%s: GetGeneration(%d) after prune: %v (deleted: %v)", tc.name, g.Number, err, deleted)
			}
			ref, err := s.DigestReferenced(ctx, g.Files[0].Digest)
			if err != nil || ref == deleted {
				t.Errorf("%s: DigestReferenced(file of generation %d) = %v, %v; deleted: %v", tc.name, g.Number, ref, err, deleted)
			}
		}
		if again, err := s.PruneGenerations(ctx, r.ID, before, tc.keep); err != nil || len(again) != 0 {
			t.Errorf("%s: second PruneGenerations = %v, %v; want nothing", tc.name, again, err)
		}
		rr, err := s.GetRepo(ctx, r.Name)
		if err != nil || rr.CurrentGeneration != count {
			t.Errorf("%s: repository after prune = %+v, %v; want CurrentGeneration %d", tc.name, rr, err, count)
		}
	}
}

// waitPast returns once the clock has moved past t, so that the next
// generation gets a later creation time (the suite's expectations follow the
// times the store reports, so a coarse clock only weakens the test).
func waitPast(t time.Time) {
	for range 100 {
		if time.Now().After(t.Add(time.Millisecond)) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func testGenerationFile(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "genfile")
	other := createRepo(t, s, "genfile-other")
	parts := []string{digestOf("p1"), digestOf("p2")}
	for i, files := range [][]meta.GenFile{
		{{Path: "repodata/repomd.xml", Digest: digestOf("r1"), Size: 1, ContentType: "application/xml"},
			{Path: "repodata/a-primary.xml.gz", Digest: digestOf("a"), Size: 2, ContentType: "application/gzip", Parts: parts}},
		{{Path: "repodata/repomd.xml", Digest: digestOf("r2"), Size: 3, ContentType: "application/xml"}},
	} {
		if _, err := s.Publish(ctx, &meta.Generation{RepoID: r.ID, Seq: lastSeq(t, s), Files: files}, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	f, n, err := s.GenerationFile(ctx, r.ID, "repodata/repomd.xml")
	if err != nil || n != 2 || f.Digest != digestOf("r2") {
		t.Errorf("GenerationFile(repomd.xml) = %+v, %d, %v; want the newest generation's (2)", f, n, err)
	}
	f, n, err = s.GenerationFile(ctx, r.ID, "repodata/a-primary.xml.gz")
	if err != nil || n != 1 || f.Digest != digestOf("a") || !slices.Equal(f.Parts, parts) || f.Size != 2 {
		t.Errorf("GenerationFile(a-primary) = %+v, %d, %v; want generation 1's with its parts", f, n, err)
	}
	if _, _, err := s.GenerationFile(ctx, other.ID, "repodata/repomd.xml"); !isNotFound(err) {
		t.Errorf("GenerationFile in another repository = %v, want ErrNotFound", err)
	}
	if _, _, err := s.GenerationFile(ctx, r.ID, "nope"); !isNotFound(err) {
		t.Errorf("GenerationFile(nope) = %v, want ErrNotFound", err)
	}
}
