// Package metatest is the conformance suite that every meta.Store backend
// runs: a backend's own test opens a fresh store and calls Run.
//
// The suite relies only on the contract documented in package meta. It does
// not assume that sequence numbers or IDs start at 1 or are contiguous, nor
// that times keep more than microsecond precision: times it passes in are
// whole microseconds and times are compared with time.Time.Equal. A time the
// store sets (CreatedAt, UpdatedAt) must read back equal to the one the call
// returned, so a store that keeps microseconds must truncate it first.
package metatest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// Run runs the conformance suite against the stores newStore returns.
//
// newStore is called once per subtest, from parallel subtests, and must
// return an empty store of its own (no repositories, tokens or events). Run
// closes it when the subtest ends and fails if Close fails.
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s meta.Store)
	}{
		{"Repos", testRepos},
		{"NotFoundAndConflicts", testErrors},
		{"AddPackageRoundtrip", testAddPackageRoundtrip},
		{"AddPackageIdentity", testAddPackageIdentity},
		{"AddPackageConflicts", testAddPackageConflicts},
		{"FindGetPackage", testFindGetPackage},
		{"ListPackages", testListPackages},
		{"PackageHistory", testPackageHistory},
		{"PackageByPathRange", testPackageByPathRange},
		{"GenerationFile", testGenerationFile},
		{"LivePackagesStops", testLivePackagesStops},
		{"DigestReferenced", testDigestReferenced},
		{"Fragments", testFragments},
		{"Publish", testPublish},
		{"PublishConcurrent", testPublishConcurrent},
		{"PruneGenerations", testPruneGenerations},
		{"Events", testEvents},
		{"EventPerMutation", testEventPerMutation},
		{"ConcurrentAddPackage", testConcurrentAddPackage},
		{"ConcurrentDuplicate", testConcurrentDuplicate},
		{"Tokens", testTokens},
		{"Edges", testEdges},
		{"DeleteRepoCascades", testDeleteRepoCascades},
		{"ProxyFiles", testProxyFiles},
		{"MirrorSyncs", testMirrorSyncs},
		{"PruneSyncs", testPruneSyncs},
		{"Snapshots", testSnapshots},
		{"DeleteRepoDropsSyncsAndSnapshots", testDeleteRepoDropsSyncsAndSnapshots},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// uploadTime is a caller-supplied time with microsecond precision.
var uploadTime = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

// invalidUTF8 is fragment data that is not valid UTF-8 and contains NUL.
var invalidUTF8 = []byte{0xff, 0xfe, 0x00, 'x', 0xc3, 0x28, 0x80, '\n', 0x00}

// digestOf returns a hex SHA-256 digest derived from s.
func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newPackage returns a package record of repo with every field set and
// fragments that include an empty one and one that is not valid UTF-8.
func newPackage(repoID int64, name, version string) *meta.Package {
	return &meta.Package{
		RepoID: repoID,
		Identity: meta.Identity{
			Name: name, Epoch: "0", Version: version, Release: "1", Arch: "x86_64",
		},
		Path:       fmt.Sprintf("Packages/%c/%s-%s-1.x86_64.rpm", name[0], name, version),
		Digest:     digestOf(name + "-" + version),
		Size:       int64(1000 + len(name)*10 + len(version)),
		Summary:    "The " + name + " package",
		UploadedBy: "ci@example.com",
		UploadedAt: uploadTime,
		Fragments: map[string][]byte{
			"primary":   []byte("<package><name>" + name + "</name><version ver=\"" + version + "\"/></package>\n"),
			"filelists": append([]byte(name), invalidUTF8...),
			"other":     {},
		},
	}
}

// createRepo creates an rpm hosted repository.
func createRepo(t *testing.T, s meta.Store, name string) *meta.Repo {
	t.Helper()
	r := &meta.Repo{Name: name, Format: meta.FormatRPM, Kind: meta.KindHosted, Config: []byte(`{}`)}
	if err := s.CreateRepo(t.Context(), r); err != nil {
		t.Fatalf("CreateRepo(%q): %v", name, err)
	}
	return r
}

// addPackage adds p and fails the test unless that succeeds.
func addPackage(t *testing.T, s meta.Store, p *meta.Package) *meta.Package {
	t.Helper()
	got, err := s.AddPackage(t.Context(), p)
	if err != nil {
		t.Fatalf("AddPackage(%s): %v", p.Path, err)
	}
	if got == nil || got.ID == 0 || got.AddedSeq == 0 || got.RemovedSeq != 0 {
		t.Fatalf("AddPackage(%s) = %+v, want ID and AddedSeq set, RemovedSeq 0", p.Path, got)
	}
	if p.ID != got.ID || p.AddedSeq != got.AddedSeq {
		t.Fatalf("AddPackage(%s): argument has ID %d AddedSeq %d, result %d %d; want them set on both",
			p.Path, p.ID, p.AddedSeq, got.ID, got.AddedSeq)
	}
	return got
}

// removePackage removes p and records the sequence number in p.RemovedSeq.
func removePackage(t *testing.T, s meta.Store, p *meta.Package) int64 {
	t.Helper()
	seq, err := s.RemovePackage(t.Context(), p.RepoID, p.ID)
	if err != nil {
		t.Fatalf("RemovePackage(%s): %v", p.Path, err)
	}
	p.RemovedSeq = seq
	return seq
}

// lastSeq returns the store's LastSeq.
func lastSeq(t *testing.T, s meta.Store) int64 {
	t.Helper()
	seq, err := s.LastSeq(t.Context())
	if err != nil {
		t.Fatalf("LastSeq: %v", err)
	}
	return seq
}

// events returns all events after since.
func events(t *testing.T, s meta.Store, since int64) []meta.Event {
	t.Helper()
	evs, err := s.Events(t.Context(), since, 100000)
	if err != nil {
		t.Fatalf("Events(%d): %v", since, err)
	}
	return evs
}

// checkNoEventSince fails unless the store has appended no event after seq.
func checkNoEventSince(t *testing.T, s meta.Store, seq int64, after string) {
	t.Helper()
	if evs := events(t, s, seq); len(evs) != 0 {
		t.Errorf("after %s: %d events appended (first %s), want none", after, len(evs), evs[0].Type)
	}
}

// samePackage reports the differences between got and want; fragments are
// compared when withFragments is set and must be absent otherwise.
func samePackage(t *testing.T, what string, got, want *meta.Package, withFragments bool) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil package, want %s", what, want.Path)
		return
	}
	g, w := *got, *want
	g.Fragments, w.Fragments = nil, nil
	if !g.UploadedAt.Equal(w.UploadedAt) {
		t.Errorf("%s: UploadedAt = %v, want %v", what, g.UploadedAt, w.UploadedAt)
	}
	g.UploadedAt, w.UploadedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
	if !withFragments {
		if len(got.Fragments) != 0 {
			t.Errorf("%s: got %d fragments, want none", what, len(got.Fragments))
		}
		return
	}
	sameFragments(t, what, got.Fragments, want.Fragments)
}

// sameFragments reports whether got holds exactly the kinds and bytes of want.
func sameFragments(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Errorf("%s: fragment kinds %q, want %q", what, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		return
	}
	for k, w := range want {
		if !bytes.Equal(got[k], w) {
			t.Errorf("%s: fragment %q = %q, want %q", what, k, got[k], w)
		}
	}
}

// recent reports whether a store-set time is near now.
func recent(tm time.Time) bool {
	d := time.Since(tm)
	return !tm.IsZero() && d > -time.Minute && d < time.Minute
}

// wantErr fails unless err matches want (nil meaning success).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v, want success", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// decode unmarshals event data, failing the test on invalid JSON.
func decode[T any](t *testing.T, e meta.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatalf("event %d (%s) data %q: %v", e.Seq, e.Type, e.Data, err)
	}
	return v
}
