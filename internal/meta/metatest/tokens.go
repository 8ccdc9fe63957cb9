package metatest

import (
	"slices"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

func testTokens(t *testing.T, s meta.Store) {
	ctx := t.Context()
	if toks, err := s.ListTokens(ctx); err != nil || len(toks) != 0 {
		t.Fatalf("ListTokens on an empty store = %v, %v; want none", toks, err)
	}
	inputs := []meta.Token{
		{Name: "admin", Hash: digestOf("s1"), Scope: meta.ScopeAdmin},
		{Name: "ci", Hash: digestOf("s2"), Scope: meta.ScopeWrite, Repos: []string{"el9", "bookworm"}},
		{Name: "reader", Hash: digestOf("s3"), Scope: meta.ScopeRead, Repos: []string{"one"}},
	}
	var created []meta.Token
	start := lastSeq(t, s)
	for _, in := range inputs {
		tok := in
		if err := s.CreateToken(ctx, &tok); err != nil {
			t.Fatalf("CreateToken(%s): %v", tok.Name, err)
		}
		if tok.ID == 0 || !recent(tok.CreatedAt) || !tok.LastUsed.IsZero() {
			t.Errorf("CreateToken(%s): ID %d CreatedAt %v LastUsed %v; want an ID, now, zero",
				tok.Name, tok.ID, tok.CreatedAt, tok.LastUsed)
		}
		if len(created) > 0 && tok.ID <= created[len(created)-1].ID {
			t.Errorf("CreateToken(%s): ID %d not above the previous token's", tok.Name, tok.ID)
		}
		created = append(created, tok)
	}
	checkNoEventSince(t, s, start, "creating tokens") // tokens are not in the feed

	for _, want := range created {
		got, err := s.TokenByHash(ctx, want.Hash)
		if err != nil {
			t.Fatalf("TokenByHash(%s): %v", want.Name, err)
		}
		sameToken(t, "TokenByHash", got, want)
	}

	used := time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC)
	for _, at := range []time.Time{used, used.Add(time.Hour)} {
		if err := s.TouchToken(ctx, created[1].ID, at); err != nil {
			t.Fatalf("TouchToken: %v", err)
		}
		created[1].LastUsed = at
		got, err := s.TokenByHash(ctx, created[1].Hash)
		if err != nil {
			t.Fatalf("TokenByHash after TouchToken: %v", err)
		}
		sameToken(t, "TokenByHash after TouchToken", got, created[1])
	}

	list, err := s.ListTokens(ctx)
	if err != nil || len(list) != len(created) {
		t.Fatalf("ListTokens = %d tokens, %v; want %d", len(list), err, len(created))
	}
	for i := range list {
		sameToken(t, "ListTokens", &list[i], created[i])
	}

	if err := s.DeleteToken(ctx, "ci"); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	if _, err := s.TokenByHash(ctx, created[1].Hash); !isNotFound(err) {
		t.Errorf("TokenByHash after DeleteToken: %v, want ErrNotFound", err)
	}
	list, err = s.ListTokens(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "admin" || list[1].Name != "reader" {
		t.Errorf("ListTokens after DeleteToken = %+v, %v; want admin, reader", list, err)
	}
	// The name and the hash are free again.
	again := created[1]
	if err := s.CreateToken(ctx, &again); err != nil {
		t.Errorf("CreateToken after DeleteToken: %v", err)
	}
}

func sameToken(t *testing.T, what string, got *meta.Token, want meta.Token) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Hash != want.Hash || got.Scope != want.Scope ||
		!slices.Equal(got.Repos, want.Repos) || !got.CreatedAt.Equal(want.CreatedAt) || !got.LastUsed.Equal(want.LastUsed) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *got, want)
	}
}
