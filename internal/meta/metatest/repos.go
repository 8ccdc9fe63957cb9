package metatest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

func testRepos(t *testing.T, s meta.Store) {
	ctx := t.Context()
	repos, err := s.ListRepos(ctx)
	if err != nil || len(repos) != 0 {
		t.Fatalf("ListRepos on an empty store = %v, %v; want none", repos, err)
	}

	// Config is opaque: its bytes come back as they went in, spacing and
	// key order included.
	inputs := []meta.Repo{
		{Name: "zeta", Format: meta.FormatDeb, Kind: meta.KindMirror,
			Config: []byte(`{"upstreams": ["http://deb.example/"],  "b":1, "a":2}`)},
		{Name: "alpha", Format: meta.FormatRPM, Kind: meta.KindHosted, Config: []byte(`{}`)},
		{Name: "mid", Format: meta.FormatArch, Kind: meta.KindProxy},
		{Name: "ips-1", Format: meta.FormatIPS, Kind: meta.KindMirror, Config: []byte("{\n\t\"x\": \"\u00e9\"\n}")},
	}
	created := map[string]meta.Repo{}
	ids := map[int64]bool{}
	for _, in := range inputs {
		r := in
		if err := s.CreateRepo(ctx, &r); err != nil {
			t.Fatalf("CreateRepo(%s): %v", r.Name, err)
		}
		if r.ID == 0 || ids[r.ID] {
			t.Errorf("CreateRepo(%s): ID %d, want a new non-zero ID", r.Name, r.ID)
		}
		ids[r.ID] = true
		if !recent(r.CreatedAt) || !r.UpdatedAt.Equal(r.CreatedAt) {
			t.Errorf("CreateRepo(%s): CreatedAt %v UpdatedAt %v, want both now", r.Name, r.CreatedAt, r.UpdatedAt)
		}
		if r.CurrentGeneration != 0 {
			t.Errorf("CreateRepo(%s): CurrentGeneration %d, want 0", r.Name, r.CurrentGeneration)
		}
		created[r.Name] = r
	}

	for _, in := range inputs {
		got, err := s.GetRepo(ctx, in.Name)
		if err != nil {
			t.Fatalf("GetRepo(%s): %v", in.Name, err)
		}
		sameRepo(t, "GetRepo("+in.Name+")", got, created[in.Name])
	}

	repos, err = s.ListRepos(ctx)
	if err != nil {
		t.Fatalf("ListRepos: %v", err)
	}
	var names []string
	for _, r := range repos {
		names = append(names, r.Name)
		sameRepo(t, "ListRepos", &r, created[r.Name])
	}
	if want := []string{"alpha", "ips-1", "mid", "zeta"}; !slices.Equal(names, want) {
		t.Errorf("ListRepos names = %q, want %q", names, want)
	}

	cfg := []byte(`{"upstreams":["http://other.example/"]}`)
	if err := s.UpdateRepoConfig(ctx, "zeta", cfg); err != nil {
		t.Fatalf("UpdateRepoConfig: %v", err)
	}
	got, err := s.GetRepo(ctx, "zeta")
	if err != nil {
		t.Fatalf("GetRepo after update: %v", err)
	}
	want := created["zeta"]
	want.Config = cfg
	if got.UpdatedAt.Before(want.UpdatedAt) || !recent(got.UpdatedAt) {
		t.Errorf("UpdatedAt after update = %v, want at or after %v", got.UpdatedAt, want.UpdatedAt)
	}
	want.UpdatedAt = got.UpdatedAt
	sameRepo(t, "GetRepo after update", got, want)

	if err := s.DeleteRepo(ctx, "mid"); err != nil {
		t.Fatalf("DeleteRepo: %v", err)
	}
	if _, err := s.GetRepo(ctx, "mid"); !isNotFound(err) {
		t.Errorf("GetRepo after delete: %v, want ErrNotFound", err)
	}
	repos, err = s.ListRepos(ctx)
	if err != nil || len(repos) != 3 {
		t.Errorf("ListRepos after delete = %d repos, %v; want 3", len(repos), err)
	}
}

// sameRepo reports the differences between got and want.
func sameRepo(t *testing.T, what string, got *meta.Repo, want meta.Repo) {
	t.Helper()
	g, w := *got, want
	if !bytes.Equal(g.Config, w.Config) {
		t.Errorf("%s: Config = %q, want %q", what, g.Config, w.Config)
	}
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
		t.Errorf("%s: CreatedAt, UpdatedAt = %v, %v; want %v, %v", what, g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
	g.Config, w.Config = nil, nil
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g.ID != w.ID || g.Name != w.Name || g.Format != w.Format || g.Kind != w.Kind ||
		g.CurrentGeneration != w.CurrentGeneration {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// testErrors checks the sentinel error of every failing call, and that a
// failed call appends no event.
func testErrors(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "errs")
	other := createRepo(t, s, "other")
	live := addPackage(t, s, newPackage(r.ID, "live", "1.0"))
	gone := addPackage(t, s, newPackage(r.ID, "gone", "1.0"))
	removePackage(t, s, gone)
	if _, err := s.Publish(ctx, &meta.Generation{RepoID: r.ID, Seq: lastSeq(t, s)}, 0); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	tok := &meta.Token{Name: "ci", Hash: digestOf("secret"), Scope: meta.ScopeWrite}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}

	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"GetRepo missing", func() error { _, err := s.GetRepo(ctx, "nope"); return err }, meta.ErrNotFound},
		{"CreateRepo taken", func() error {
			return s.CreateRepo(ctx, &meta.Repo{Name: "errs", Format: meta.FormatDeb, Kind: meta.KindHosted})
		}, meta.ErrExists},
		{"UpdateRepoConfig missing", func() error { return s.UpdateRepoConfig(ctx, "nope", []byte(`{}`)) }, meta.ErrNotFound},
		{"DeleteRepo missing", func() error { return s.DeleteRepo(ctx, "nope") }, meta.ErrNotFound},
		{"FindPackage missing", func() error {
			_, err := s.FindPackage(ctx, r.ID, meta.Identity{Name: "nope", Version: "1"})
			return err
		}, meta.ErrNotFound},
		{"FindPackage removed", func() error { _, err := s.FindPackage(ctx, r.ID, gone.Identity); return err }, meta.ErrNotFound},
		{"FindPackage other repo", func() error { _, err := s.FindPackage(ctx, other.ID, live.Identity); return err }, meta.ErrNotFound},
		{"GetPackage missing", func() error { _, err := s.GetPackage(ctx, r.ID, live.ID+1000); return err }, meta.ErrNotFound},
		{"GetPackage removed", func() error { _, err := s.GetPackage(ctx, r.ID, gone.ID); return err }, meta.ErrNotFound},
		{"GetPackage other repo", func() error { _, err := s.GetPackage(ctx, other.ID, live.ID); return err }, meta.ErrNotFound},
		{"PackageByPath missing", func() error {
			_, err := s.PackageByPath(ctx, r.ID, "nope.rpm", lastSeq(t, s), lastSeq(t, s))
			return err
		}, meta.ErrNotFound},
		{"RemovePackage missing", func() error { _, err := s.RemovePackage(ctx, r.ID, live.ID+1000); return err }, meta.ErrNotFound},
		{"RemovePackage removed", func() error { _, err := s.RemovePackage(ctx, r.ID, gone.ID); return err }, meta.ErrNotFound},
		{"RemovePackage other repo", func() error { _, err := s.RemovePackage(ctx, other.ID, live.ID); return err }, meta.ErrNotFound},
		{"GetGeneration missing", func() error { _, err := s.GetGeneration(ctx, r.ID, 2); return err }, meta.ErrNotFound},
		{"GetGeneration other repo", func() error { _, err := s.GetGeneration(ctx, other.ID, 1); return err }, meta.ErrNotFound},
		{"Publish stale", func() error { _, err := s.Publish(ctx, &meta.Generation{RepoID: r.ID}, 0); return err }, meta.ErrStale},
		{"CreateToken name taken", func() error {
			return s.CreateToken(ctx, &meta.Token{Name: "ci", Hash: digestOf("other"), Scope: meta.ScopeRead})
		}, meta.ErrExists},
		{"CreateToken hash taken", func() error {
			return s.CreateToken(ctx, &meta.Token{Name: "ci2", Hash: tok.Hash, Scope: meta.ScopeRead})
		}, meta.ErrExists},
		{"TokenByHash missing", func() error { _, err := s.TokenByHash(ctx, digestOf("nope")); return err }, meta.ErrNotFound},
		{"DeleteToken missing", func() error { return s.DeleteToken(ctx, "nope") }, meta.ErrNotFound},
	}
	for _, tc := range cases {
		before := lastSeq(t, s)
		wantErr(t, tc.name, tc.call(), tc.want)
		checkNoEventSince(t, s, before, tc.name)
	}
}

// isNotFound reports whether err is meta.ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, meta.ErrNotFound) }

func testDeleteRepoCascades(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "gone")
	keep := createRepo(t, s, "kept")
	shared := addPackage(t, s, newPackage(keep.ID, "shared", "1"))
	var pkgs []*meta.Package
	for _, n := range []string{"a", "b", "c"} {
		pkgs = append(pkgs, addPackage(t, s, newPackage(r.ID, n, "1")))
	}
	removePackage(t, s, pkgs[2])
	sharedFile := meta.GenFile{Path: "repodata/shared.xml", Digest: digestOf("shared file"), Size: 1, ContentType: "application/xml"}
	ownFile := meta.GenFile{Path: "repodata/own.xml", Digest: digestOf("own file"), Size: 1, ContentType: "application/xml"}
	for _, g := range []*meta.Generation{
		{RepoID: r.ID, Seq: lastSeq(t, s), Files: []meta.GenFile{sharedFile, ownFile}},
		{RepoID: keep.ID, Seq: lastSeq(t, s), Files: []meta.GenFile{sharedFile}},
	} {
		if _, err := s.Publish(ctx, g, 0); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}

	if err := s.DeleteRepo(ctx, r.Name); err != nil {
		t.Fatalf("DeleteRepo: %v", err)
	}
	upTo := lastSeq(t, s)
	if _, err := s.GetRepo(ctx, r.Name); !isNotFound(err) {
		t.Errorf("GetRepo after DeleteRepo: %v, want ErrNotFound", err)
	}
	if list, err := s.ListPackages(ctx, r.ID, meta.PackageQuery{}); len(list) != 0 || (err != nil && !isNotFound(err)) {
		t.Errorf("ListPackages of a deleted repository = %d packages, %v; want none", len(list), err)
	}
	for _, p := range pkgs {
		if _, err := s.GetPackage(ctx, r.ID, p.ID); !isNotFound(err) {
			t.Errorf("GetPackage(%s) of a deleted repository: %v, want ErrNotFound", p.Name, err)
		}
		if ref, err := s.DigestReferenced(ctx, p.Digest); ref || err != nil {
			t.Errorf("DigestReferenced(%s) of a deleted repository = %v, %v; want false", p.Name, ref, err)
		}
	}
	err := s.LivePackages(ctx, r.ID, upTo, func(p *meta.Package) error {
		t.Errorf("LivePackages of a deleted repository: %s", p.Path)
		return nil
	})
	if err != nil && !isNotFound(err) {
		t.Errorf("LivePackages of a deleted repository: %v", err)
	}
	if ch, err := s.PackageChanges(ctx, r.ID, 0, upTo); len(ch) != 0 || (err != nil && !isNotFound(err)) {
		t.Errorf("PackageChanges of a deleted repository = %d changes, %v; want none", len(ch), err)
	}
	if _, err := s.GetGeneration(ctx, r.ID, 1); !isNotFound(err) {
		t.Errorf("GetGeneration of a deleted repository: %v, want ErrNotFound", err)
	}
	if gens, err := s.ListGenerations(ctx, r.ID); len(gens) != 0 || (err != nil && !isNotFound(err)) {
		t.Errorf("ListGenerations of a deleted repository = %d, %v; want none", len(gens), err)
	}
	refs := []struct {
		name   string
		digest string
		want   bool
	}{
		{"own generation file", ownFile.Digest, false},
		{"file shared with a kept repository", sharedFile.Digest, true},
		{"kept repository's package", shared.Digest, true},
	}
	for _, tc := range refs {
		if ref, err := s.DigestReferenced(ctx, tc.digest); ref != tc.want || err != nil {
			t.Errorf("DigestReferenced(%s) = %v, %v; want %v", tc.name, ref, err, tc.want)
		}
	}

	// A new repository with the same name starts fresh.
	fresh := createRepo(t, s, r.Name)
	if fresh.ID == r.ID || fresh.CurrentGeneration != 0 {
		t.Errorf("recreated repository: ID %d CurrentGeneration %d; want a new ID (not %d) and 0", fresh.ID, fresh.CurrentGeneration, r.ID)
	}
	if list, err := s.ListPackages(ctx, fresh.ID, meta.PackageQuery{}); err != nil || len(list) != 0 {
		t.Errorf("ListPackages of the recreated repository = %d packages, %v; want none", len(list), err)
	}
	if gens, err := s.ListGenerations(ctx, fresh.ID); err != nil || len(gens) != 0 {
		t.Errorf("ListGenerations of the recreated repository = %d, %v; want none", len(gens), err)
	}
	p := addPackage(t, s, newPackage(fresh.ID, "a", "1"))
	if slices.ContainsFunc(pkgs, func(old *meta.Package) bool { return old.ID == p.ID }) {
		t.Errorf("package ID %d reused", p.ID)
	}
	g := &meta.Generation{RepoID: fresh.ID, Seq: lastSeq(t, s)}
	if _, err := s.Publish(ctx, g, 0); err != nil || g.Number != 1 {
		t.Errorf("first Publish in the recreated repository: number %d, %v; want 1", g.Number, err)
	}
	if ch, err := s.PackageChanges(ctx, fresh.ID, 0, lastSeq(t, s)); err != nil || len(ch) != 1 || ch[0].Package.ID != p.ID {
		t.Errorf("PackageChanges of the recreated repository = %+v, %v; want only its package", ch, err)
	}
}
