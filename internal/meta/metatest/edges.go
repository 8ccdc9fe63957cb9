package metatest

import (
	"maps"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

func testEdges(t *testing.T, s meta.Store) {
	ctx := t.Context()
	if edges, err := s.ListEdges(ctx); err != nil || len(edges) != 0 {
		t.Fatalf("ListEdges on an empty store = %v, %v; want none", edges, err)
	}
	start := lastSeq(t, s)
	seen := time.Date(2025, 3, 4, 5, 6, 7, 891000000, time.UTC)
	inputs := []meta.Edge{
		{Name: "eu-west", Version: "1.2.3", Repos: map[string]int64{"el9": 7, "bookworm": 0},
			LastSync: seen.Add(-time.Second), LastSeen: seen, Address: "192.0.2.1:5000"},
		{Name: "ap-south", Version: "dev", LastSeen: seen, LastError: "blob abc: digest mismatch"},
	}
	for i := range inputs {
		e := inputs[i]
		if err := s.PutEdge(ctx, &e); err != nil {
			t.Fatalf("PutEdge(%s): %v", e.Name, err)
		}
	}
	checkNoEventSince(t, s, start, "reporting edges")
	list, err := s.ListEdges(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListEdges = %+v, %v; want 2 edges", list, err)
	}
	// Ordered by name; a nil Repos reads back empty.
	sameEdge(t, "ListEdges[0]", list[0], meta.Edge{Name: "ap-south", Version: "dev", Repos: map[string]int64{}, LastSeen: seen, LastError: "blob abc: digest mismatch"})
	sameEdge(t, "ListEdges[1]", list[1], inputs[0])

	// A later report replaces the record.
	next := meta.Edge{Name: "eu-west", Version: "1.2.4", Repos: map[string]int64{"el9": 9},
		LastSync: seen.Add(time.Minute), LastSeen: seen.Add(time.Minute), Address: "192.0.2.2:5001"}
	if err := s.PutEdge(ctx, &next); err != nil {
		t.Fatalf("PutEdge again: %v", err)
	}
	list, err = s.ListEdges(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListEdges after a second report = %+v, %v; want 2 edges", list, err)
	}
	sameEdge(t, "ListEdges after a second report", list[1], next)

	if err := s.PutEdge(ctx, &meta.Edge{LastSeen: seen}); err == nil {
		t.Error("PutEdge without a name succeeded")
	}
	if err := s.DeleteEdge(ctx, "ap-south"); err != nil {
		t.Fatalf("DeleteEdge: %v", err)
	}
	if err := s.DeleteEdge(ctx, "ap-south"); !isNotFound(err) {
		t.Errorf("DeleteEdge of a deleted edge: %v, want ErrNotFound", err)
	}
	list, err = s.ListEdges(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "eu-west" {
		t.Errorf("ListEdges after DeleteEdge = %+v, %v; want eu-west", list, err)
	}
}

func sameEdge(t *testing.T, what string, got, want meta.Edge) {
	t.Helper()
	if want.Repos == nil {
		want.Repos = map[string]int64{}
	}
	if got.Name != want.Name || got.Version != want.Version || !maps.Equal(got.Repos, want.Repos) ||
		!got.LastSync.Equal(want.LastSync) || !got.LastSeen.Equal(want.LastSeen) ||
		got.Address != want.Address || got.LastError != want.LastError {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
