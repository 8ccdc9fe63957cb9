package metatest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/packyard/packyard/internal/meta"
)

func testEvents(t *testing.T, s meta.Store) {
	ctx := t.Context()
	if seq := lastSeq(t, s); seq != 0 {
		t.Fatalf("LastSeq of an empty store = %d, want 0", seq)
	}
	if evs := events(t, s, 0); len(evs) != 0 {
		t.Fatalf("Events of an empty store = %d events, want none", len(evs))
	}
	for i := range 7 {
		createRepo(t, s, fmt.Sprint("ev", i))
	}
	all := events(t, s, 0)
	if len(all) != 7 {
		t.Fatalf("Events = %d events, want 7", len(all))
	}
	for i, e := range all {
		if e.Seq <= 0 || (i > 0 && e.Seq <= all[i-1].Seq) {
			t.Errorf("event %d has Seq %d after %d, want strictly increasing positive", i, e.Seq, all[max(i-1, 0)].Seq)
		}
		if e.Type != meta.EventRepoCreated || e.Repo != fmt.Sprint("ev", i) || !recent(e.Time) {
			t.Errorf("event %d = %s %s at %v, want %s ev%d now", i, e.Type, e.Repo, e.Time, meta.EventRepoCreated, i)
		}
	}
	if last := lastSeq(t, s); last != all[6].Seq {
		t.Errorf("LastSeq = %d, want %d", last, all[6].Seq)
	}

	cases := []struct {
		since     int64
		limit     int
		wantFirst int // index in all, -1 for no events
		wantLen   int
	}{
		{0, 3, 0, 3},
		{all[2].Seq, 3, 3, 3},
		{all[5].Seq, 3, 6, 1},
		{all[6].Seq, 3, -1, 0},
		{all[0].Seq, 100, 1, 6},
		{all[3].Seq - 1, 1, 3, 1},
	}
	for _, tc := range cases {
		got, err := s.Events(ctx, tc.since, tc.limit)
		if err != nil {
			t.Fatalf("Events(%d, %d): %v", tc.since, tc.limit, err)
		}
		var want []meta.Event
		if tc.wantFirst >= 0 {
			want = all[tc.wantFirst : tc.wantFirst+tc.wantLen]
		}
		if !sameEvents(got, want) {
			t.Errorf("Events(%d, %d) = %v, want %v", tc.since, tc.limit, seqs(got), seqs(want))
		}
	}

	// Paging from 0 with a small limit visits every event once.
	var paged []meta.Event
	for since := int64(0); ; {
		page, err := s.Events(ctx, since, 2)
		if err != nil {
			t.Fatalf("Events(%d, 2): %v", since, err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		since = page[len(page)-1].Seq
	}
	if !sameEvents(paged, all) {
		t.Errorf("paging visited %v, want %v", seqs(paged), seqs(all))
	}
}

func sameEvents(a, b []meta.Event) bool {
	return slices.EqualFunc(a, b, func(x, y meta.Event) bool {
		return x.Seq == y.Seq && x.Type == y.Type && x.Repo == y.Repo &&
			string(x.Data) == string(y.Data) && x.Time.Equal(y.Time)
	})
}

func seqs(evs []meta.Event) []int64 {
	var out []int64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

// testEventPerMutation runs every mutating call and checks the one event it
// appends: its type, repository, sequence number and data.
func testEventPerMutation(t *testing.T, s meta.Store) {
	ctx := t.Context()
	var (
		r   = &meta.Repo{Name: "mut", Format: meta.FormatDeb, Kind: meta.KindHosted, Config: []byte(`{}`)}
		p   = newPackage(0, "foo", "1.0")
		gen *meta.Generation
	)
	steps := []struct {
		name string
		typ  string
		do   func() (int64, error) // returns the sequence number the call reports, 0 if none
		data func() any            // the expected data, evaluated after do
	}{
		{"CreateRepo", meta.EventRepoCreated,
			func() (int64, error) { return 0, s.CreateRepo(ctx, r) },
			func() any { return meta.RepoEventData{ID: r.ID, Format: r.Format, Kind: r.Kind} }},
		{"UpdateRepoConfig", meta.EventRepoUpdated,
			func() (int64, error) { return 0, s.UpdateRepoConfig(ctx, r.Name, []byte(`{"a":1}`)) },
			func() any { return meta.RepoEventData{ID: r.ID, Format: r.Format, Kind: r.Kind} }},
		{"AddPackage", meta.EventPackageAdded,
			func() (int64, error) {
				p.RepoID = r.ID
				got, err := s.AddPackage(ctx, p)
				if err != nil {
					return 0, err
				}
				return got.AddedSeq, nil
			},
			func() any {
				return meta.PackageEventData{ID: p.ID, Name: p.Name, Path: p.Path, Digest: p.Digest, Size: p.Size}
			}},
		{"Publish", meta.EventGenerationPublic,
			func() (int64, error) {
				gen = &meta.Generation{RepoID: r.ID, Seq: p.AddedSeq, Files: genFiles("mut", 2)}
				return s.Publish(ctx, gen, 0)
			},
			func() any { return meta.GenerationEventData{Number: 1, Seq: p.AddedSeq} }},
		{"RemovePackage", meta.EventPackageRemoved,
			func() (int64, error) { return s.RemovePackage(ctx, r.ID, p.ID) },
			func() any {
				return meta.PackageEventData{ID: p.ID, Name: p.Name, Path: p.Path, Digest: p.Digest, Size: p.Size}
			}},
		{"DeleteRepo", meta.EventRepoDeleted,
			func() (int64, error) { return 0, s.DeleteRepo(ctx, r.Name) },
			func() any { return meta.RepoEventData{ID: r.ID, Format: r.Format, Kind: r.Kind} }},
	}
	for _, st := range steps {
		before := lastSeq(t, s)
		seq, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		evs := events(t, s, before)
		if len(evs) != 1 {
			t.Fatalf("%s appended %d events, want 1", st.name, len(evs))
		}
		e := evs[0]
		if e.Type != st.typ || e.Repo != r.Name || !recent(e.Time) {
			t.Errorf("%s appended %s for %q at %v, want %s for %q now", st.name, e.Type, e.Repo, e.Time, st.typ, r.Name)
		}
		if seq != 0 && e.Seq != seq {
			t.Errorf("%s reported sequence %d, its event has %d", st.name, seq, e.Seq)
		}
		if last := lastSeq(t, s); last != e.Seq {
			t.Errorf("%s: LastSeq %d, want %d", st.name, last, e.Seq)
		}
		want := st.data()
		got := reflect.New(reflect.TypeOf(want))
		if err := json.Unmarshal(e.Data, got.Interface()); err != nil {
			t.Errorf("%s: event data %q: %v", st.name, e.Data, err)
		} else if !reflect.DeepEqual(got.Elem().Interface(), want) {
			t.Errorf("%s: event data %+v, want %+v", st.name, got.Elem().Interface(), want)
		}
	}
}

// testConcurrentAddPackage adds packages from many goroutines while a
// follower reads the feed, and checks that every add succeeds with its own
// sequence number and that events become visible in sequence order, each
// with the change it records.
func testConcurrentAddPackage(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "concurrent")
	start := lastSeq(t, s)
	const n = 20

	done := make(chan struct{})
	var followed []meta.Event
	var followErr error
	followerDone := make(chan struct{})
	go func() {
		defer close(followerDone)
		since := start
		for finished := false; ; {
			select {
			case <-done:
				finished = true // one last read after all adds returned
			default:
			}
			evs, err := s.Events(ctx, since, 100)
			if err != nil {
				followErr = err
				return
			}
			for _, e := range evs {
				if e.Type != meta.EventPackageAdded {
					continue
				}
				var d meta.PackageEventData
				if err := json.Unmarshal(e.Data, &d); err != nil {
					followErr = fmt.Errorf("event %d data %q: %w", e.Seq, e.Data, err)
					return
				}
				if _, err := s.GetPackage(ctx, r.ID, d.ID); err != nil {
					followErr = fmt.Errorf("event %d seen but not its package %d: %w", e.Seq, d.ID, err)
					return
				}
			}
			followed = append(followed, evs...)
			if len(evs) > 0 {
				since = evs[len(evs)-1].Seq
			}
			if finished && len(evs) == 0 {
				return
			}
		}
	}()

	got := make([]*meta.Package, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = s.AddPackage(ctx, newPackage(r.ID, fmt.Sprintf("pkg%02d", i), "1.0"))
		})
	}
	wg.Wait()
	close(done)
	<-followerDone
	if followErr != nil {
		t.Fatalf("follower: %v", followErr)
	}

	seqOf := map[int64]int64{} // package ID → AddedSeq
	for i, err := range errs {
		if err != nil {
			t.Fatalf("AddPackage %d: %v", i, err)
		}
		if _, dup := seqOf[got[i].ID]; dup {
			t.Errorf("AddPackage %d: ID %d given twice", i, got[i].ID)
		}
		seqOf[got[i].ID] = got[i].AddedSeq
	}

	all := events(t, s, start)
	if len(all) != n {
		t.Fatalf("%d events after the adds, want %d", len(all), n)
	}
	seen := map[int64]bool{}
	for i, e := range all {
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Errorf("event %d: Seq %d after %d", i, e.Seq, all[i-1].Seq)
		}
		d := decode[meta.PackageEventData](t, e)
		if e.Type != meta.EventPackageAdded || seqOf[d.ID] != e.Seq || seen[d.ID] {
			t.Errorf("event %d = %s seq %d for package %d (AddedSeq %d), want one package.added per package at its AddedSeq",
				i, e.Type, e.Seq, d.ID, seqOf[d.ID])
		}
		seen[d.ID] = true
	}
	// A follower that resumed after each event it saw missed none: no event
	// became visible after one with a higher sequence number.
	if !slices.Equal(seqs(followed), seqs(all)) {
		t.Errorf("follower saw %v, want %v", seqs(followed), seqs(all))
	}
}

// testConcurrentDuplicate adds the same package from many goroutines:
// exactly one succeeds, the others get ErrExists and the winner.
func testConcurrentDuplicate(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "dup")
	start := lastSeq(t, s)
	const n = 10
	got := make([]*meta.Package, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = s.AddPackage(ctx, newPackage(r.ID, "same", "1.0"))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("AddPackage %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, meta.ErrExists):
			t.Errorf("AddPackage %d: %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no AddPackage succeeded")
	}
	for i, err := range errs {
		if err != nil && (got[i] == nil || got[i].ID != got[winner].ID) {
			t.Errorf("AddPackage %d returned %+v with ErrExists, want the winner %d", i, got[i], got[winner].ID)
		}
	}
	if evs := events(t, s, start); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
}
