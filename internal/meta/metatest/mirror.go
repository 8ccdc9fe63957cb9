package metatest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// putSync stores ms and fails the test unless that succeeds.
func putSync(t *testing.T, s meta.Store, ms *meta.MirrorSync) {
	t.Helper()
	id := ms.ID
	if err := s.PutSync(t.Context(), ms); err != nil {
		t.Fatalf("PutSync(%+v): %v", *ms, err)
	}
	if ms.ID == 0 || (id != 0 && ms.ID != id) {
		t.Fatalf("PutSync set ID %d (was %d); want a new one on insert, the same on update", ms.ID, id)
	}
}

// sameSync reports the differences between got and want.
func sameSync(t *testing.T, what string, got, want meta.MirrorSync) {
	t.Helper()
	if got.ID != want.ID || got.RepoID != want.RepoID || !got.StartedAt.Equal(want.StartedAt) ||
		!got.FinishedAt.Equal(want.FinishedAt) || got.Status != want.Status || got.Error != want.Error ||
		got.Seq != want.Seq || got.Generation != want.Generation || !bytes.Equal(got.Stats, want.Stats) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// sameSyncs compares lists of sync records.
func sameSyncs(t *testing.T, what string, got []meta.MirrorSync, want ...meta.MirrorSync) {
	t.Helper()
	if len(got) != len(want) {
		var ids []int64
		for _, g := range got {
			ids = append(ids, g.ID)
		}
		t.Errorf("%s: %d records (IDs %v), want %d", what, len(got), ids, len(want))
		return
	}
	for i := range want {
		sameSync(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func testMirrorSyncs(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := &meta.Repo{Name: "mirror", Format: meta.FormatRPM, Kind: meta.KindMirror, Config: []byte(`{"upstreams":["http://example.com/"]}`)}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatalf("CreateRepo: %v", err)
	}
	other := createRepo(t, s, "other")
	listSyncs := func(repoID int64, limit int) []meta.MirrorSync {
		t.Helper()
		list, err := s.ListSyncs(ctx, repoID, limit)
		if err != nil {
			t.Fatalf("ListSyncs(%d, %d): %v", repoID, limit, err)
		}
		return list
	}
	if list := listSyncs(r.ID, 0); len(list) != 0 {
		t.Fatalf("ListSyncs before any sync = %+v, want none", list)
	}
	if got, err := s.LastGoodSync(ctx, r.ID); !isNotFound(err) {
		t.Fatalf("LastGoodSync before any sync = %+v, %v; want ErrNotFound", got, err)
	}

	// A sync starts: its record is inserted, running, and is not in the
	// change feed.
	start := lastSeq(t, s)
	t0 := time.Date(2025, 6, 1, 2, 0, 0, 123456000, time.UTC)
	first := meta.MirrorSync{RepoID: r.ID, StartedAt: t0, Status: meta.SyncRunning, Stats: []byte(`{}`)}
	putSync(t, s, &first)
	checkNoEventSince(t, s, start, "recording a sync")
	sameSyncs(t, "ListSyncs of a running sync", listSyncs(r.ID, 0), first)
	if got, err := s.LastGoodSync(ctx, r.ID); !isNotFound(err) {
		t.Errorf("LastGoodSync with only a running sync = %+v, %v; want ErrNotFound", got, err)
	}

	// It ends: the record is replaced, not added to.
	first.FinishedAt, first.Status = t0.Add(90*time.Second), meta.SyncOK
	first.Seq, first.Generation = 42, 3
	first.Stats = []byte(`{"added":12,"kept":300,"failed":0,"bytes":123456789}`)
	putSync(t, s, &first)
	sameSyncs(t, "ListSyncs after the sync ended", listSyncs(r.ID, 0), first)
	if got, err := s.LastGoodSync(ctx, r.ID); err != nil {
		t.Errorf("LastGoodSync: %v", err)
	} else {
		sameSync(t, "LastGoodSync", *got, first)
	}

	// Later syncs: a failed one, then one running. Neither is good.
	failed := meta.MirrorSync{RepoID: r.ID, StartedAt: t0.Add(time.Hour), FinishedAt: t0.Add(time.Hour + time.Second),
		Status: meta.SyncFailed, Error: "fetch http://example.com/repodata/repomd.xml: 503 Service Unavailable",
		Stats: []byte(`{"failed":1}`)}
	putSync(t, s, &failed)
	running := meta.MirrorSync{RepoID: r.ID, StartedAt: t0.Add(2 * time.Hour), Status: meta.SyncRunning} // nil Stats
	putSync(t, s, &running)
	if !(first.ID < failed.ID && failed.ID < running.ID) {
		t.Errorf("sync IDs %d, %d, %d; want increasing", first.ID, failed.ID, running.ID)
	}
	sameSyncs(t, "ListSyncs (all)", listSyncs(r.ID, 0), running, failed, first)
	sameSyncs(t, "ListSyncs (limit 2)", listSyncs(r.ID, 2), running, failed)
	sameSyncs(t, "ListSyncs (limit 1)", listSyncs(r.ID, 1), running)
	sameSyncs(t, "ListSyncs (limit 10)", listSyncs(r.ID, 10), running, failed, first)
	if got, err := s.LastGoodSync(ctx, r.ID); err != nil || got.ID != first.ID {
		t.Errorf("LastGoodSync after a failed and a running sync = %+v, %v; want the first (%d)", got, err, first.ID)
	}

	// The running one succeeds: it is now the last good one; it fails
	// after all (a record replaced again): the first is again.
	running.FinishedAt, running.Status, running.Seq, running.Generation = t0.Add(3*time.Hour), meta.SyncOK, 50, 4
	putSync(t, s, &running)
	if got, err := s.LastGoodSync(ctx, r.ID); err != nil || got.ID != running.ID {
		t.Errorf("LastGoodSync after the third sync succeeded = %+v, %v; want it (%d)", got, err, running.ID)
	}
	running.Status, running.Error, running.Seq, running.Generation = meta.SyncFailed, "publish: stale", 0, 0
	putSync(t, s, &running)
	if got, err := s.LastGoodSync(ctx, r.ID); err != nil || got.ID != first.ID {
		t.Errorf("LastGoodSync after the third record turned failed = %+v, %v; want the first (%d)", got, err, first.ID)
	}
	checkNoEventSince(t, s, start, "recording syncs")

	// Another repository's records are its own.
	if list := listSyncs(other.ID, 0); len(list) != 0 {
		t.Errorf("ListSyncs of another repository = %+v, want none", list)
	}
	if got, err := s.LastGoodSync(ctx, other.ID); !isNotFound(err) {
		t.Errorf("LastGoodSync of another repository = %+v, %v; want ErrNotFound", got, err)
	}

	// Refusals change nothing.
	for _, tc := range []struct {
		name string
		ms   meta.MirrorSync
	}{
		{"insert into a missing repository", meta.MirrorSync{RepoID: 1 << 40, StartedAt: t0, Status: meta.SyncRunning}},
		{"update of a missing record", meta.MirrorSync{ID: running.ID + 1000, RepoID: r.ID, StartedAt: t0, Status: meta.SyncOK}},
		{"update of another repository's record", meta.MirrorSync{ID: first.ID, RepoID: other.ID, StartedAt: t0, Status: meta.SyncFailed}},
	} {
		ms := tc.ms
		wantErr(t, "PutSync: "+tc.name, s.PutSync(ctx, &ms), meta.ErrNotFound)
	}
	bad := meta.MirrorSync{RepoID: r.ID, StartedAt: t0, Status: "done"}
	if err := s.PutSync(ctx, &bad); err == nil {
		t.Errorf("PutSync with status %q succeeded", bad.Status)
	}
	sameSyncs(t, "ListSyncs after refused calls", listSyncs(r.ID, 0), running, failed, first)
	if list := listSyncs(other.ID, 0); len(list) != 0 {
		t.Errorf("ListSyncs of another repository after refused calls = %+v, want none", list)
	}
}

// testPruneSyncs: PruneSyncs keeps the newest records, any running one
// and the newest ok one (whatever their age), and only the repository's.
func testPruneSyncs(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := &meta.Repo{Name: "mirror", Format: meta.FormatRPM, Kind: meta.KindMirror, Config: []byte(`{"upstreams":["http://example.com/"]}`)}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatalf("CreateRepo: %v", err)
	}
	other := &meta.Repo{Name: "other-mirror", Format: meta.FormatRPM, Kind: meta.KindMirror, Config: []byte(`{"upstreams":["http://example.com/"]}`)}
	if err := s.CreateRepo(ctx, other); err != nil {
		t.Fatalf("CreateRepo: %v", err)
	}
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// Oldest first: a stale running record, the last good sync, then
	// eight failed ones.
	stale := meta.MirrorSync{RepoID: r.ID, StartedAt: t0, Status: meta.SyncRunning}
	putSync(t, s, &stale)
	good := meta.MirrorSync{RepoID: r.ID, StartedAt: t0.Add(time.Hour), FinishedAt: t0.Add(2 * time.Hour), Status: meta.SyncOK, Seq: 7, Generation: 2}
	putSync(t, s, &good)
	var failed []meta.MirrorSync
	for i := range 8 {
		f := meta.MirrorSync{RepoID: r.ID, StartedAt: t0.Add(time.Duration(3+i) * time.Hour), FinishedAt: t0.Add(time.Duration(3+i) * time.Hour), Status: meta.SyncFailed, Error: "503"}
		putSync(t, s, &f)
		failed = append(failed, f)
	}
	kept := meta.MirrorSync{RepoID: other.ID, StartedAt: t0, FinishedAt: t0, Status: meta.SyncFailed, Error: "503"}
	putSync(t, s, &kept)
	if _, err := s.PruneSyncs(ctx, r.ID, 0); err == nil {
		t.Error("PruneSyncs keeping 0 records was accepted")
	}
	if n, err := s.PruneSyncs(ctx, r.ID, 20); err != nil || n != 0 {
		t.Errorf("PruneSyncs with fewer records than kept = %d, %v; want 0", n, err)
	}
	n, err := s.PruneSyncs(ctx, r.ID, 3)
	if err != nil || n != 5 {
		t.Fatalf("PruneSyncs(keep 3) = %d, %v; want 5 deleted", n, err)
	}
	got, err := s.ListSyncs(ctx, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameSyncs(t, "ListSyncs after PruneSyncs(keep 3)", got, failed[7], failed[6], failed[5], good, stale)
	if g, err := s.LastGoodSync(ctx, r.ID); err != nil || g.ID != good.ID {
		t.Errorf("LastGoodSync after pruning = %+v, %v; want %d", g, err, good.ID)
	}
	if l, err := s.ListSyncs(ctx, other.ID, 0); err != nil || len(l) != 1 {
		t.Errorf("another repository's records after pruning: %+v, %v", l, err)
	}
	if n, err := s.PruneSyncs(ctx, r.ID, 3); err != nil || n != 0 {
		t.Errorf("second PruneSyncs(keep 3) = %d, %v; want 0", n, err)
	}
}
