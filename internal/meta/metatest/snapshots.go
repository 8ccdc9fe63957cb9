package metatest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// createSnapshot creates a snapshot and fails the test unless that succeeds.
func createSnapshot(t *testing.T, s meta.Store, repoID int64, name string, gen int64) meta.Snapshot {
	t.Helper()
	sn := meta.Snapshot{RepoID: repoID, Name: name, Generation: gen}
	if err := s.CreateSnapshot(t.Context(), &sn); err != nil {
		t.Fatalf("CreateSnapshot(%s → %d): %v", name, gen, err)
	}
	if !recent(sn.CreatedAt) {
		t.Errorf("CreateSnapshot(%s) set CreatedAt %v, want now", name, sn.CreatedAt)
	}
	return sn
}

// sameSnapshots compares lists of snapshots.
func sameSnapshots(t *testing.T, what string, got []meta.Snapshot, want ...meta.Snapshot) {
	t.Helper()
	same := func(a, b meta.Snapshot) bool {
		return a.RepoID == b.RepoID && a.Name == b.Name && a.Generation == b.Generation && a.CreatedAt.Equal(b.CreatedAt)
	}
	if !slices.EqualFunc(got, want, same) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// publishN publishes n generations of r, one package added before each,
// and returns them.
func publishN(t *testing.T, s meta.Store, r *meta.Repo, n int) []meta.Generation {
	t.Helper()
	var gens []meta.Generation
	for i := range n {
		addPackage(t, s, newPackage(r.ID, fmt.Sprintf("%s-p%d", r.Name, i), "1"))
		g := &meta.Generation{RepoID: r.ID, Seq: lastSeq(t, s), Files: genFiles(fmt.Sprint(r.Name, i), 2)}
		if _, err := s.Publish(t.Context(), g, r.CurrentGeneration); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		r.CurrentGeneration = g.Number
		gens = append(gens, *g)
		waitPast(g.CreatedAt)
	}
	return gens
}

func testSnapshots(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "snap")
	other := createRepo(t, s, "snap-other")

	// Generation 1 holds package a, which is removed before generation 2.
	a := addPackage(t, s, newPackage(r.ID, "a", "1"))
	g1 := &meta.Generation{RepoID: r.ID, Seq: lastSeq(t, s), Files: genFiles("snap-first", 2)}
	if _, err := s.Publish(ctx, g1, 0); err != nil {
		t.Fatal(err)
	}
	r.CurrentGeneration = 1
	waitPast(g1.CreatedAt)
	removePackage(t, s, a)
	gens := append([]meta.Generation{*g1}, publishN(t, s, r, 3)...) // 1 to 4, 4 current
	publishN(t, s, other, 1)

	if list, err := s.ListSnapshots(ctx, r.ID); err != nil || len(list) != 0 {
		t.Fatalf("ListSnapshots before any = %+v, %v; want none", list, err)
	}
	start := lastSeq(t, s)
	release := createSnapshot(t, s, r.ID, "release-1", 1)
	nightly := createSnapshot(t, s, r.ID, "nightly", 2)
	current := createSnapshot(t, s, r.ID, "2025-06", 4)
	also := createSnapshot(t, s, r.ID, "2025-06-b", 4) // two names for one generation
	elsewhere := createSnapshot(t, s, other.ID, "release-1", 1)
	checkNoEventSince(t, s, start, "creating snapshots")

	got, err := s.GetSnapshot(ctx, r.ID, "release-1")
	if err != nil {
		t.Fatalf("GetSnapshot: %v", err)
	}
	sameSnapshots(t, "GetSnapshot", []meta.Snapshot{*got}, release)
	list, err := s.ListSnapshots(ctx, r.ID)
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	sameSnapshots(t, "ListSnapshots", list, current, also, nightly, release)
	list, err = s.ListSnapshots(ctx, other.ID)
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	sameSnapshots(t, "ListSnapshots of the other repository", list, elsewhere)

	// Refusals change nothing.
	for _, tc := range []struct {
		name string
		sn   meta.Snapshot
		want error
	}{
		{"a name taken", meta.Snapshot{RepoID: r.ID, Name: "nightly", Generation: 3}, meta.ErrExists},
		{"an unknown generation", meta.Snapshot{RepoID: r.ID, Name: "future", Generation: 5}, meta.ErrNotFound},
		{"generation 0", meta.Snapshot{RepoID: r.ID, Name: "zero", Generation: 0}, meta.ErrNotFound},
		{"another repository's generation", meta.Snapshot{RepoID: other.ID, Name: "two", Generation: 2}, meta.ErrNotFound},
		{"a missing repository", meta.Snapshot{RepoID: 1 << 40, Name: "x", Generation: 1}, meta.ErrNotFound},
	} {
		sn := tc.sn
		wantErr(t, "CreateSnapshot of "+tc.name, s.CreateSnapshot(ctx, &sn), tc.want)
	}
	if err := s.CreateSnapshot(ctx, &meta.Snapshot{RepoID: r.ID, Generation: 1}); err == nil {
		t.Error("CreateSnapshot without a name succeeded")
	}
	if got, err := s.GetSnapshot(ctx, r.ID, "future"); !isNotFound(err) {
		t.Errorf("GetSnapshot of a refused snapshot = %+v, %v; want ErrNotFound", got, err)
	}
	if got, err := s.GetSnapshot(ctx, other.ID, "nightly"); !isNotFound(err) {
		t.Errorf("GetSnapshot of another repository's name = %+v, %v; want ErrNotFound", got, err)
	}
	list, _ = s.ListSnapshots(ctx, r.ID)
	sameSnapshots(t, "ListSnapshots after refused calls", list, current, also, nightly, release)

	// Pruning everything it may keeps the snapshots' generations, whole.
	future := time.Now().Add(time.Hour)
	prune := func(want ...int64) {
		t.Helper()
		got, err := s.PruneGenerations(ctx, r.ID, future, 0)
		if err != nil {
			t.Fatalf("PruneGenerations: %v", err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("PruneGenerations deleted %v, want %v", got, want)
		}
	}
	retained := func(want ...int64) {
		t.Helper()
		list, err := s.ListGenerations(ctx, r.ID)
		if err != nil {
			t.Fatalf("ListGenerations: %v", err)
		}
		var numbers []int64
		for _, g := range list {
			numbers = append(numbers, g.Number)
		}
		slices.Reverse(numbers)
		if !slices.Equal(numbers, want) {
			t.Errorf("retained generations %v, want %v", numbers, want)
		}
	}
	prune(3)
	retained(1, 2, 4)
	kept, err := s.GetGeneration(ctx, r.ID, 1)
	if err != nil {
		t.Fatalf("GetGeneration of a snapshot's generation: %v", err)
	}
	sameFiles(t, "GetGeneration of a snapshot's generation", kept.Files, gens[0].Files)
	for _, d := range []string{gens[0].Files[0].Digest, gens[1].Files[1].Digest, a.Digest} {
		if ref, err := s.DigestReferenced(ctx, d); err != nil || !ref {
			t.Errorf("DigestReferenced(%s) of a snapshot's generation = %v, %v; want true", d, ref, err)
		}
	}
	if ref, err := s.DigestReferenced(ctx, gens[2].Files[0].Digest); err != nil || ref {
		t.Errorf("DigestReferenced(file of pruned generation 3) = %v, %v; want false", ref, err)
	}
	// The removed package is still there for the snapshot's generation.
	var live []string
	if err := s.LivePackages(ctx, r.ID, gens[0].Seq, func(p *meta.Package) error {
		live = append(live, p.Name)
		return nil
	}); err != nil || !slices.Equal(live, []string{"a"}) {
		t.Errorf("LivePackages at generation 1's Seq = %v, %v; want [a]", live, err)
	}
	if p, err := s.PackageByPath(ctx, r.ID, a.Path, gens[0].Seq, gens[0].Seq); err != nil || p.ID != a.ID {
		t.Errorf("PackageByPath(%s) in generation 1 = %+v, %v; want package a", a.Path, p, err)
	}
	// A pruned generation can no longer be named.
	wantErr(t, "CreateSnapshot of a pruned generation",
		s.CreateSnapshot(ctx, &meta.Snapshot{RepoID: r.ID, Name: "late", Generation: 3}), meta.ErrNotFound)

	// Deleting a snapshot makes its generation prunable again; another
	// repository's snapshot of the same name and number does not count.
	if err := s.DeleteSnapshot(ctx, r.ID, "nightly"); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	wantErr(t, "DeleteSnapshot twice", s.DeleteSnapshot(ctx, r.ID, "nightly"), meta.ErrNotFound)
	wantErr(t, "DeleteSnapshot in another repository", s.DeleteSnapshot(ctx, other.ID, "nightly"), meta.ErrNotFound)
	if got, err := s.GetSnapshot(ctx, r.ID, "nightly"); !isNotFound(err) {
		t.Errorf("GetSnapshot after DeleteSnapshot = %+v, %v; want ErrNotFound", got, err)
	}
	prune(2)
	retained(1, 4)
	if err := s.DeleteSnapshot(ctx, r.ID, "release-1"); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	prune(1)
	retained(4)
	// The current generation's snapshots are all that is left; the other
	// repository's generation 1 and snapshot are untouched.
	list, _ = s.ListSnapshots(ctx, r.ID)
	sameSnapshots(t, "ListSnapshots at the end", list, current, also)
	if got, err := s.GetSnapshot(ctx, other.ID, "release-1"); err != nil || got.Generation != 1 {
		t.Errorf("GetSnapshot of the other repository = %+v, %v", got, err)
	}
	if _, err := s.GetGeneration(ctx, other.ID, 1); err != nil {
		t.Errorf("GetGeneration of the other repository's generation 1: %v", err)
	}
	checkNoEventSince(t, s, start, "snapshots and pruning")
}

// testDeleteRepoDropsSyncsAndSnapshots checks that deleting a repository
// deletes its sync records and its snapshots, also one naming a generation
// that is not current, and no other repository's.
func testDeleteRepoDropsSyncsAndSnapshots(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "gone")
	keep := createRepo(t, s, "kept")
	publishN(t, s, r, 3)
	publishN(t, s, keep, 2)
	createSnapshot(t, s, r.ID, "old", 1)
	createSnapshot(t, s, r.ID, "new", 3)
	kept := createSnapshot(t, s, keep.ID, "old", 1)
	t0 := time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC)
	for _, repoID := range []int64{r.ID, r.ID, keep.ID} {
		putSync(t, s, &meta.MirrorSync{RepoID: repoID, StartedAt: t0, FinishedAt: t0.Add(time.Minute),
			Status: meta.SyncOK, Seq: 1, Generation: 1, Stats: []byte(`{}`)})
	}

	if err := s.DeleteRepo(ctx, r.Name); err != nil {
		t.Fatalf("DeleteRepo: %v", err)
	}
	if list, err := s.ListSnapshots(ctx, r.ID); len(list) != 0 || (err != nil && !isNotFound(err)) {
		t.Errorf("ListSnapshots of a deleted repository = %+v, %v; want none", list, err)
	}
	for _, name := range []string{"old", "new"} {
		if got, err := s.GetSnapshot(ctx, r.ID, name); !isNotFound(err) {
			t.Errorf("GetSnapshot(%s) of a deleted repository = %+v, %v; want ErrNotFound", name, got, err)
		}
	}
	if list, err := s.ListSyncs(ctx, r.ID, 0); len(list) != 0 || (err != nil && !isNotFound(err)) {
		t.Errorf("ListSyncs of a deleted repository = %+v, %v; want none", list, err)
	}
	if got, err := s.LastGoodSync(ctx, r.ID); !isNotFound(err) {
		t.Errorf("LastGoodSync of a deleted repository = %+v, %v; want ErrNotFound", got, err)
	}

	list, err := s.ListSnapshots(ctx, keep.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameSnapshots(t, "ListSnapshots of the kept repository", list, kept)
	if syncs, err := s.ListSyncs(ctx, keep.ID, 0); err != nil || len(syncs) != 1 {
		t.Errorf("ListSyncs of the kept repository = %+v, %v; want 1 record", syncs, err)
	}

	// A repository created again under the name starts with none.
	again := createRepo(t, s, "gone")
	if list, err := s.ListSnapshots(ctx, again.ID); err != nil || len(list) != 0 {
		t.Errorf("ListSnapshots of the recreated repository = %+v, %v; want none", list, err)
	}
	if syncs, err := s.ListSyncs(ctx, again.ID, 0); err != nil || len(syncs) != 0 {
		t.Errorf("ListSyncs of the recreated repository = %+v, %v; want none", syncs, err)
	}
}
