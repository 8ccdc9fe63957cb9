// Package auth issues and checks API tokens. A token is a random secret
// shown once; only its SHA-256 is stored. Clients send it as a Bearer token
// or as the password of HTTP Basic auth (dnf, apt and pacman only speak
// Basic).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// Errors of authentication.
var (
	// ErrInvalidToken means credentials were sent but match no token.
	ErrInvalidToken = errors.New("invalid token")
	// ErrInvalidScope means a scope name is unknown.
	ErrInvalidScope = errors.New("invalid scope: use read, edge, write or admin")
)

// tokenPrefix marks packyard secrets so that secret scanners can find them.
const tokenPrefix = "pky_"

var scopeRank = map[string]int{meta.ScopeRead: 1, meta.ScopeEdge: 2, meta.ScopeWrite: 3, meta.ScopeAdmin: 4}

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool { return scopeRank[s] > 0 }

// NewSecret returns a new random token secret.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the stored form of a secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Principal is who a request acts as.
type Principal struct {
	TokenID int64
	Name    string
	Scope   string
	// Repos limits the principal to these repositories; empty means all.
	Repos []string
}

// Allows reports whether the principal has at least scope on repo ("" for
// actions that are not about one repository: those need an unrestricted
// token).
func (p *Principal) Allows(scope, repo string) bool {
	if p == nil || scopeRank[p.Scope] < scopeRank[scope] {
		return false
	}
	if len(p.Repos) == 0 {
		return true
	}
	return repo != "" && slices.Contains(p.Repos, repo)
}

// HasScope reports whether the principal's scope includes scope, whatever
// repositories it is limited to.
func (p *Principal) HasScope(scope string) bool {
	return p != nil && scopeRank[p.Scope] >= scopeRank[scope] && scopeRank[scope] > 0
}

// Authenticator resolves request credentials to principals.
type Authenticator struct {
	meta meta.Store
	now  func() time.Time
}

// New returns an Authenticator over the token records in m.
func New(m meta.Store) *Authenticator { return &Authenticator{meta: m, now: time.Now} }

// Credential extracts a token secret from a request: a Bearer token or the
// password of Basic auth. ok is false when the request carries none.
func Credential(r *http.Request) (secret string, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	if s, found := strings.CutPrefix(h, "Bearer "); found {
		return strings.TrimSpace(s), true
	}
	if _, pw, found := r.BasicAuth(); found {
		return pw, true
	}
	return "", true
}

// Authenticate returns the principal for a request, nil if it carries no
// credential, or ErrInvalidToken.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	secret, ok := Credential(r)
	if !ok {
		return nil, nil
	}
	return a.Check(ctx, secret)
}

// Check resolves a token secret.
func (a *Authenticator) Check(ctx context.Context, secret string) (*Principal, error) {
	if secret == "" {
		return nil, ErrInvalidToken
	}
	h := Hash(secret)
	t, err := a.meta.TokenByHash(ctx, h)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) != 1 {
		return nil, ErrInvalidToken
	}
	if a.now().Sub(t.LastUsed) > time.Minute {
		_ = a.meta.TouchToken(ctx, t.ID, a.now())
	}
	return &Principal{TokenID: t.ID, Name: t.Name, Scope: t.Scope, Repos: t.Repos}, nil
}

// Create makes a new token and returns its secret, which is not stored.
func Create(ctx context.Context, m meta.Store, name, scope string, repos []string) (*meta.Token, string, error) {
	if !ValidScope(scope) {
		return nil, "", fmt.Errorf("%w (got %q)", ErrInvalidScope, scope)
	}
	if name == "" {
		return nil, "", errors.New("token name is empty")
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	t := &meta.Token{Name: name, Hash: Hash(secret), Scope: scope, Repos: repos}
	if err := m.CreateToken(ctx, t); err != nil {
		return nil, "", fmt.Errorf("create token %q: %w", name, err)
	}
	return t, secret, nil
}

// AdminTokenFile is the file, under the data directory, that holds the
// first admin token.
const AdminTokenFile = "admin.token"

// EnsureAdmin makes sure an admin token exists. On first start it creates
// one (from preset if not empty), writes the secret to
// <dataDir>/admin.token with mode 0600 and returns the path and true.
func EnsureAdmin(ctx context.Context, m meta.Store, dataDir, preset string) (string, bool, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	if preset != "" {
		h := Hash(preset)
		if _, err := m.TokenByHash(ctx, h); err == nil {
			return path, false, nil
		}
		name := "admin"
		if _, err := m.TokenByHash(ctx, h); errors.Is(err, meta.ErrNotFound) {
			toks, err := m.ListTokens(ctx)
			if err != nil {
				return "", false, err
			}
			for _, t := range toks {
				if t.Name == name {
					name = fmt.Sprintf("admin-%d", time.Now().Unix())
				}
			}
		}
		t := &meta.Token{Name: name, Hash: h, Scope: meta.ScopeAdmin}
		if err := m.CreateToken(ctx, t); err != nil {
			return "", false, fmt.Errorf("create preset admin token: %w", err)
		}
		return path, true, nil
	}
	toks, err := m.ListTokens(ctx)
	if err != nil {
		return "", false, err
	}
	for _, t := range toks {
		if t.Scope == meta.ScopeAdmin {
			return path, false, nil
		}
	}
	secret, err := NewSecret()
	if err != nil {
		return "", false, err
	}
	// Write the file first: a token whose secret was lost is useless.
	if err := writeSecret(path, secret); err != nil {
		return "", false, err
	}
	t := &meta.Token{Name: "admin", Hash: Hash(secret), Scope: meta.ScopeAdmin}
	if err := m.CreateToken(ctx, t); err != nil {
		_ = os.Remove(path)
		return "", false, fmt.Errorf("create admin token: %w", err)
	}
	return path, true, nil
}

func writeSecret(path, secret string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
