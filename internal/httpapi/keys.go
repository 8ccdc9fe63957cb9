package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/packyard/packyard/internal/sign"
)

// keyJSON is the API form of a signing key. Private key material never
// leaves the server through the API.
type keyJSON struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	Algorithm   string    `json:"algorithm,omitempty"`
	UserIDs     []string  `json:"user_ids,omitempty"`
	Created     time.Time `json:"created"`
	External    bool      `json:"external,omitempty"`
	Default     bool      `json:"default,omitempty"`
	Repos       []string  `json:"repos"`
}

func (s *Server) toKeyJSON(r *http.Request, info sign.KeyInfo) keyJSON {
	repos, _ := s.svc.ReposUsingKey(r.Context(), info.Name)
	if repos == nil {
		repos = []string{}
	}
	return keyJSON{
		Name: info.Name, Fingerprint: info.Fingerprint, Algorithm: info.Algorithm, UserIDs: info.UserIDs,
		Created: info.Created, External: info.External, Default: info.Name == s.opts.DefaultKey, Repos: repos,
	}
}

func (s *Server) keyring(w http.ResponseWriter, r *http.Request) *sign.Keyring {
	if s.opts.Keys == nil {
		s.writeError(w, r, fmt.Errorf("%w: this server has no keyring", errNotFound))
	}
	return s.opts.Keys
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	kr := s.keyring(w, r)
	if kr == nil {
		return
	}
	out := []keyJSON{}
	for _, info := range kr.List() {
		out = append(out, s.toKeyJSON(r, info))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) showKey(w http.ResponseWriter, r *http.Request) {
	kr := s.keyring(w, r)
	if kr == nil {
		return
	}
	info, err := kr.Describe(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toKeyJSON(r, info))
}

// publicKey serves a key's public part: armored, or binary with
// ?format=gpg.
func (s *Server) publicKey(w http.ResponseWriter, r *http.Request) {
	kr := s.keyring(w, r)
	if kr == nil {
		return
	}
	k, err := kr.Get(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var b []byte
	switch f := r.URL.Query().Get("format"); f {
	case "", "asc":
		b, err = k.ArmoredPublic()
	case "gpg":
		b, err = k.BinaryPublic()
	default:
		err = fmt.Errorf("%w: format must be asc or gpg, not %q", errBadRequest, f)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pgp-keys")
	_, _ = w.Write(b)
}

type generateKeyRequest struct {
	Name  string `json:"name"`
	UID   string `json:"uid"`
	Email string `json:"email"`
	// Algorithm is rsa3072 (the default), rsa4096 or ed25519.
	Algorithm string `json:"algorithm"`
	// Bits, the older form, means rsa<Bits> when Algorithm is empty.
	Bits int `json:"bits"`
}

func (s *Server) generateKey(w http.ResponseWriter, r *http.Request) {
	kr := s.keyring(w, r)
	if kr == nil {
		return
	}
	var req generateKeyRequest
	if _, err := decodeBody(r, 64<<10, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	algo := req.Algorithm
	if algo == "" && req.Bits != 0 {
		algo = fmt.Sprintf("rsa%d", req.Bits)
	}
	if _, err := kr.Generate(req.Name, req.UID, req.Email, algo); err != nil {
		s.writeError(w, r, err)
		return
	}
	info, err := kr.Describe(req.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("generated signing key", "name", info.Name, "fingerprint", info.Fingerprint)
	w.Header().Set("Location", "/api/v1/keys/"+info.Name)
	writeJSON(w, http.StatusCreated, s.toKeyJSON(r, info))
}

type importKeyRequest struct {
	// Armored is the ASCII-armored private key.
	Armored string `json:"armored"`
	// Passphrase decrypts an encrypted key; the key is stored decrypted.
	Passphrase string `json:"passphrase"`
}

func (s *Server) importKey(w http.ResponseWriter, r *http.Request) {
	kr := s.keyring(w, r)
	if kr == nil {
		return
	}
	var req importKeyRequest
	if _, err := decodeBody(r, 2*sign.MaxKeySize, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	if _, err := kr.Import(name, []byte(req.Armored), []byte(req.Passphrase)); err != nil {
		s.writeError(w, r, err)
		return
	}
	info, err := kr.Describe(name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("imported signing key", "name", info.Name, "fingerprint", info.Fingerprint)
	w.Header().Set("Location", "/api/v1/keys/"+info.Name)
	writeJSON(w, http.StatusCreated, s.toKeyJSON(r, info))
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	kr := s.keyring(w, r)
	if kr == nil {
		return
	}
	name := r.PathValue("name")
	if name == s.opts.DefaultKey {
		s.writeError(w, r, fmt.Errorf("%w: %q is the server's default key (setting default_key)", errKeyInUse, name))
		return
	}
	repos, err := s.svc.ReposUsingKey(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(repos) > 0 {
		s.writeError(w, r, fmt.Errorf("%w: key %q still signs %v; assign other keys first", errKeyInUse, name, repos))
		return
	}
	if err := kr.Delete(name); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errKeyInUse refuses to delete a key that still signs repositories or is
// the default key.
var errKeyInUse = errors.New("key in use")

// keyStatus maps keyring errors; statusOf calls it.
func keyStatus(err error) (int, string, bool) {
	switch {
	case errors.Is(err, errKeyInUse):
		return http.StatusConflict, "in_use", true
	case errors.Is(err, sign.ErrKeyNotFound):
		return http.StatusNotFound, "not_found", true
	case errors.Is(err, sign.ErrKeyExists):
		return http.StatusConflict, "exists", true
	case errors.Is(err, sign.ErrExternalKey):
		return http.StatusConflict, "external_key", true
	case errors.Is(err, sign.ErrKeyName), errors.Is(err, sign.ErrAlgorithm), errors.Is(err, sign.ErrKeyTooLarge),
		errors.Is(err, sign.ErrNotArmored), errors.Is(err, sign.ErrNoPrivateKey), errors.Is(err, sign.ErrInvalidKey),
		errors.Is(err, sign.ErrUnsupportedKey), errors.Is(err, sign.ErrPassphraseRequired),
		errors.Is(err, sign.ErrWrongPassphrase), errors.Is(err, sign.ErrNoSigningKey):
		return http.StatusBadRequest, "invalid_key", true
	}
	return 0, "", false
}
