package metatest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/packyard/packyard/internal/meta"
)

// withoutFragments returns a copy of p without its fragments, for comparing
// results whose fragments the contract leaves open.
func withoutFragments(p *meta.Package) *meta.Package {
	if p == nil {
		return nil
	}
	c := *p
	c.Fragments = nil
	return &c
}

func testAddPackageRoundtrip(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "rt")
	start := lastSeq(t, s)

	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	deb := newPackage(r.ID, "libdeb", "2.36-9+deb12u4")
	deb.Scope = "bookworm/main"
	deb.Epoch = "1"
	deb.Arch = "amd64"
	deb.Path = "pool/main/libd/libdeb/libdeb_2.36-9+deb12u4_amd64.deb"
	deb.Fragments = map[string][]byte{"Packages": []byte("Package: libdeb\nVersion: 1:2.36-9+deb12u4\n\n")}
	noFrags := newPackage(r.ID, "nofrags", "1")
	noFrags.Fragments = nil
	noFrags.Summary, noFrags.UploadedBy = "", ""
	bigFrags := newPackage(r.ID, "bigfrags", "1")
	bigFrags.Fragments["filelists"] = big
	bigFrags.Size = 5 << 30 // sizes beyond 32 bits

	in := []*meta.Package{newPackage(r.ID, "foo", "1.0"), deb, noFrags, bigFrags}
	want := map[int64]*meta.Package{}
	for _, p := range in {
		saved := *p
		got := addPackage(t, s, p)
		if got.AddedSeq <= start {
			t.Errorf("AddPackage(%s): AddedSeq %d, want above %d", p.Path, got.AddedSeq, start)
		}
		saved.ID, saved.AddedSeq = got.ID, got.AddedSeq
		want[got.ID] = &saved
	}

	for id, w := range want {
		got, err := s.GetPackage(ctx, r.ID, id)
		if err != nil {
			t.Fatalf("GetPackage(%s): %v", w.Path, err)
		}
		samePackage(t, "GetPackage", got, w, false)
		got, err = s.FindPackage(ctx, r.ID, w.Identity)
		if err != nil {
			t.Fatalf("FindPackage(%s): %v", w.Path, err)
		}
		samePackage(t, "FindPackage", withoutFragments(got), withoutFragments(w), false)
	}

	seen := 0
	err := s.LivePackages(ctx, r.ID, lastSeq(t, s), func(p *meta.Package) error {
		seen++
		if w, ok := want[p.ID]; !ok {
			t.Errorf("LivePackages: unexpected package %d %s", p.ID, p.Path)
		} else {
			samePackage(t, "LivePackages", p, w, true)
		}
		return nil
	})
	if err != nil || seen != len(want) {
		t.Errorf("LivePackages: %d packages, %v; want %d", seen, err, len(want))
	}

	changes, err := s.PackageChanges(ctx, r.ID, start, lastSeq(t, s))
	if err != nil || len(changes) != len(want) {
		t.Fatalf("PackageChanges = %d changes, %v; want %d", len(changes), err, len(want))
	}
	for _, c := range changes {
		if c.Removed {
			t.Errorf("PackageChanges: %s reported removed", c.Package.Path)
		}
		samePackage(t, "PackageChanges", &c.Package, want[c.Package.ID], true)
	}
}

// testAddPackageIdentity checks that every identity field and the
// repository take part in uniqueness.
func testAddPackageIdentity(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "ident")
	other := createRepo(t, s, "ident-other")
	base := addPackage(t, s, newPackage(r.ID, "pkg", "1.0"))

	variants := []struct {
		name   string
		change func(id *meta.Identity)
	}{
		{"scope", func(id *meta.Identity) { id.Scope = "bookworm/main" }},
		{"name", func(id *meta.Identity) { id.Name = "pkg2" }},
		{"epoch", func(id *meta.Identity) { id.Epoch = "1" }},
		{"version", func(id *meta.Identity) { id.Version = "1.1" }},
		{"release", func(id *meta.Identity) { id.Release = "2" }},
		{"arch", func(id *meta.Identity) { id.Arch = "aarch64" }},
	}
	for i, v := range variants {
		p := newPackage(r.ID, "pkg", "1.0")
		v.change(&p.Identity)
		p.Path = "variant/" + v.name + ".rpm"
		p.Digest = digestOf(v.name)
		got := addPackage(t, s, p)
		found, err := s.FindPackage(ctx, r.ID, p.Identity)
		if err != nil || found.ID != got.ID {
			t.Errorf("variant %d (%s): FindPackage = %v, %v; want package %d", i, v.name, found, err, got.ID)
		}
	}
	found, err := s.FindPackage(ctx, r.ID, base.Identity)
	if err != nil || found.ID != base.ID {
		t.Errorf("FindPackage(base) = %v, %v; want package %d", found, err, base.ID)
	}

	// The same identity and path in another repository is another package.
	p := addPackage(t, s, newPackage(other.ID, "pkg", "1.0"))
	if p.ID == base.ID {
		t.Errorf("same package in two repositories got the same ID %d", p.ID)
	}
}

func testAddPackageConflicts(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "conflicts")
	orig := addPackage(t, s, newPackage(r.ID, "foo", "1.0"))

	sameIdentity := newPackage(r.ID, "foo", "1.0")
	sameIdentity.Path, sameIdentity.Digest = "elsewhere/foo.rpm", digestOf("other bytes")
	samePath := newPackage(r.ID, "foo", "2.0")
	samePath.Path = orig.Path
	cases := []struct {
		name string
		p    *meta.Package
	}{
		{"identical", newPackage(r.ID, "foo", "1.0")},
		{"same identity, other file", sameIdentity},
		{"same path, other identity", samePath},
	}
	for _, tc := range cases {
		before := lastSeq(t, s)
		got, err := s.AddPackage(ctx, tc.p)
		wantErr(t, tc.name, err, meta.ErrExists)
		samePackage(t, tc.name+": returned package", withoutFragments(got), withoutFragments(orig), false)
		checkNoEventSince(t, s, before, tc.name)
	}
	list, err := s.ListPackages(ctx, r.ID, meta.PackageQuery{})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListPackages after conflicts = %d packages, %v; want 1", len(list), err)
	}

	// Once removed, the identity and the path are free again.
	removed := removePackage(t, s, orig)
	again := addPackage(t, s, newPackage(r.ID, "foo", "1.0"))
	if again.ID == orig.ID || again.AddedSeq <= removed {
		t.Errorf("re-added package: ID %d AddedSeq %d; want an ID other than %d and a sequence above %d",
			again.ID, again.AddedSeq, orig.ID, removed)
	}
	found, err := s.FindPackage(ctx, r.ID, orig.Identity)
	if err != nil || found.ID != again.ID {
		t.Errorf("FindPackage after re-add = %v, %v; want package %d", found, err, again.ID)
	}
	removePackage(t, s, again)
	addPackage(t, s, samePath)

	// The same bytes at the same path under another identity (the same
	// .deb in a second distribution) share the file.
	shared := newPackage(r.ID, "foo", "2.0")
	shared.Scope = "other/main"
	shared.Path, shared.Digest, shared.Size = samePath.Path, samePath.Digest, samePath.Size
	sp := addPackage(t, s, shared)
	if sp.ID == samePath.ID {
		t.Errorf("shared path: got the first package's ID %d", sp.ID)
	}
	byPath, err := s.PackageByPath(ctx, r.ID, samePath.Path, sp.AddedSeq, sp.AddedSeq)
	if err != nil || byPath.Digest != samePath.Digest {
		t.Errorf("PackageByPath(shared) = %v, %v; want digest %s", byPath, err, samePath.Digest)
	}
	// Other bytes at that path still conflict, in any scope.
	otherBytes := newPackage(r.ID, "foo", "3.0")
	otherBytes.Scope = "third/main"
	otherBytes.Path, otherBytes.Digest = samePath.Path, digestOf("yet other bytes")
	before := lastSeq(t, s)
	got, err := s.AddPackage(ctx, otherBytes)
	wantErr(t, "same path, other bytes, other scope", err, meta.ErrExists)
	if got == nil || got.Path != samePath.Path {
		t.Errorf("same path, other bytes: returned %v; want a package at %s", got, samePath.Path)
	}
	checkNoEventSince(t, s, before, "same path, other bytes")
}

func testFindGetPackage(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "find")
	a := addPackage(t, s, newPackage(r.ID, "a", "1"))
	b := addPackage(t, s, newPackage(r.ID, "b", "1"))
	for _, p := range []*meta.Package{a, b} {
		got, err := s.GetPackage(ctx, r.ID, p.ID)
		if err != nil {
			t.Fatalf("GetPackage(%d): %v", p.ID, err)
		}
		samePackage(t, "GetPackage", got, p, false)
		got, err = s.FindPackage(ctx, r.ID, p.Identity)
		if err != nil {
			t.Fatalf("FindPackage(%s): %v", p.Name, err)
		}
		samePackage(t, "FindPackage", withoutFragments(got), withoutFragments(p), false)
	}
	removePackage(t, s, a)
	if _, err := s.GetPackage(ctx, r.ID, a.ID); !isNotFound(err) {
		t.Errorf("GetPackage(removed): %v, want ErrNotFound", err)
	}
	if _, err := s.FindPackage(ctx, r.ID, a.Identity); !isNotFound(err) {
		t.Errorf("FindPackage(removed): %v, want ErrNotFound", err)
	}
	if got, err := s.GetPackage(ctx, r.ID, b.ID); err != nil || got.ID != b.ID {
		t.Errorf("GetPackage(b) after removing a = %v, %v", got, err)
	}
}

func testListPackages(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "list")
	other := createRepo(t, s, "list-other")
	addPackage(t, s, newPackage(other.ID, "foo-other", "1"))
	ids := map[string]int64{}
	for _, name := range []string{"libfoo", "FooBar", "bar", "foo_bar", "fooXbar", "100%pure", "foo-removed", "zlib"} {
		p := addPackage(t, s, newPackage(r.ID, name, "1"))
		ids[name] = p.ID
		if name == "foo-removed" {
			removePackage(t, s, p)
		}
	}

	cases := []struct {
		name string
		q    meta.PackageQuery
		want []string
	}{
		{"all", meta.PackageQuery{}, []string{"libfoo", "FooBar", "bar", "foo_bar", "fooXbar", "100%pure", "zlib"}},
		{"case-insensitive", meta.PackageQuery{Text: "FOO"}, []string{"libfoo", "FooBar", "foo_bar", "fooXbar"}},
		{"lower", meta.PackageQuery{Text: "foob"}, []string{"FooBar"}},
		{"substring", meta.PackageQuery{Text: "bar"}, []string{"FooBar", "bar", "foo_bar", "fooXbar"}},
		{"underscore is literal", meta.PackageQuery{Text: "o_b"}, []string{"foo_bar"}},
		{"percent is literal", meta.PackageQuery{Text: "%"}, []string{"100%pure"}},
		{"percent inside", meta.PackageQuery{Text: "0%P"}, []string{"100%pure"}},
		{"no match", meta.PackageQuery{Text: "nothing"}, nil},
		{"removed excluded", meta.PackageQuery{Text: "removed"}, nil},
		{"after", meta.PackageQuery{AfterID: ids["foo_bar"]}, []string{"fooXbar", "100%pure", "zlib"}},
		{"limit", meta.PackageQuery{Limit: 2}, []string{"libfoo", "FooBar"}},
		{"after and limit", meta.PackageQuery{AfterID: ids["FooBar"], Limit: 3}, []string{"bar", "foo_bar", "fooXbar"}},
		{"text, after and limit", meta.PackageQuery{Text: "foo", AfterID: ids["libfoo"], Limit: 2}, []string{"FooBar", "foo_bar"}},
		{"after the last", meta.PackageQuery{AfterID: ids["zlib"]}, nil},
	}
	for _, tc := range cases {
		got, err := s.ListPackages(ctx, r.ID, tc.q)
		if err != nil {
			t.Fatalf("%s: ListPackages(%+v): %v", tc.name, tc.q, err)
		}
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
			if len(p.Fragments) != 0 {
				t.Errorf("%s: %s listed with fragments", tc.name, p.Name)
			}
			if p.RepoID != r.ID || p.ID != ids[p.Name] {
				t.Errorf("%s: %s listed with RepoID %d ID %d, want %d %d", tc.name, p.Name, p.RepoID, p.ID, r.ID, ids[p.Name])
			}
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("%s: ListPackages(%+v) = %q, want %q", tc.name, tc.q, names, tc.want)
		}
	}

	// Keyset pagination visits every live package once.
	var all []int64
	for after := int64(0); ; {
		page, err := s.ListPackages(ctx, r.ID, meta.PackageQuery{AfterID: after, Limit: 3})
		if err != nil {
			t.Fatalf("ListPackages page after %d: %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			all = append(all, p.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(all) != 7 || !slices.IsSorted(all) {
		t.Errorf("paging visited %v, want 7 ascending IDs", all)
	}
}

func testDigestReferenced(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "refs")
	live := addPackage(t, s, newPackage(r.ID, "live", "1"))
	gone := addPackage(t, s, newPackage(r.ID, "gone", "1"))
	removePackage(t, s, gone)
	g := &meta.Generation{RepoID: r.ID, Seq: lastSeq(t, s), Files: []meta.GenFile{
		{Path: "repodata/repomd.xml", Digest: digestOf("repomd"), Size: 3000, ContentType: "application/xml"},
		{Path: "repodata/x-primary.xml.gz", Digest: digestOf("whole"), Size: 30, ContentType: "application/gzip",
			Parts: []string{digestOf("part1"), digestOf("part2"), digestOf("part3")}},
	}}
	if _, err := s.Publish(ctx, g, 0); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	cases := []struct {
		name   string
		digest string
		want   bool
	}{
		{"live package", live.Digest, true},
		{"removed package", gone.Digest, true},
		{"generation file", digestOf("repomd"), true},
		{"first part of a file", digestOf("part1"), true},
		{"last part of a file", digestOf("part3"), true},
		{"unknown", digestOf("unknown"), false},
	}
	walked := map[string]bool{}
	if err := s.WalkReferences(ctx, func(d string) error { walked[d] = true; return nil }); err != nil {
		t.Fatalf("WalkReferences: %v", err)
	}
	for _, tc := range cases {
		got, err := s.DigestReferenced(ctx, tc.digest)
		if err != nil || got != tc.want {
			t.Errorf("%s: DigestReferenced = %v, %v; want %v", tc.name, got, err, tc.want)
		}
		if walked[tc.digest] != tc.want {
			t.Errorf("%s: WalkReferences listed it: %v, want %v", tc.name, walked[tc.digest], tc.want)
		}
	}
	// Nothing else may appear (the whole file, which is its parts, may).
	allowed := map[string]bool{digestOf("whole"): true, digestOf("part2"): true}
	for _, c := range cases {
		allowed[c.digest] = c.want
	}
	for d := range walked {
		if !allowed[d] {
			t.Errorf("WalkReferences listed %s, which nothing references", d)
		}
	}
	if !walked[digestOf("part2")] {
		t.Error("WalkReferences did not list the middle part of a file")
	}
	stop := errors.New("stop")
	n := 0
	if err := s.WalkReferences(ctx, func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("WalkReferences after fn's error: %v after %d calls, want stop after 1", err, n)
	}
}

func testFragments(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "frags")
	other := createRepo(t, s, "frags-other")
	a := addPackage(t, s, newPackage(r.ID, "a", "1"))
	b := addPackage(t, s, newPackage(r.ID, "b", "1"))
	removePackage(t, s, b)
	x := addPackage(t, s, newPackage(other.ID, "x", "1"))
	got, err := s.Fragments(ctx, r.ID, []int64{a.ID, b.ID, x.ID, 1 << 40})
	if err != nil {
		t.Fatalf("Fragments: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Fragments returned %d packages, want a and the removed b (not another repository's, not unknown IDs)", len(got))
	}
	for _, p := range []*meta.Package{a, b} {
		want := newPackage(r.ID, p.Name, "1").Fragments
		if len(got[p.ID]) != len(want) {
			t.Fatalf("%s: %d fragments, want %d", p.Name, len(got[p.ID]), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got[p.ID][k], v) {
				t.Errorf("%s %s fragment = %q, want %q", p.Name, k, got[p.ID][k], v)
			}
		}
	}
	// Many IDs at once (more than one query's worth).
	var ids []int64
	for i := 0; i < 1200; i++ {
		ids = append(ids, a.ID)
	}
	if got, err := s.Fragments(ctx, r.ID, ids); err != nil || len(got) != 1 {
		t.Fatalf("Fragments with 1200 IDs = %d packages, %v", len(got), err)
	}
}
