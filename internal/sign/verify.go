package sign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrBadSignature wraps every verification failure: no signature, a
// signature by a key that is not trusted, or one that does not match the
// data.
var ErrBadSignature = errors.New("bad signature")

// maxKeyring bounds the public keys a Verifier reads.
const maxKeyring = 4 << 20

// Verifier checks OpenPGP signatures (repomd.xml.asc, Release.gpg,
// InRelease, NAME.db.sig) against a fixed set of trusted public keys.
type Verifier struct {
	keys openpgp.EntityList
	now  func() time.Time
}

// NewVerifier reads trusted public keys: each argument is an armored
// block (or several, concatenated) or a binary keyring.
func NewVerifier(keyrings ...[]byte) (*Verifier, error) {
	v := &Verifier{now: time.Now}
	for i, kr := range keyrings {
		if len(kr) > maxKeyring {
			return nil, fmt.Errorf("public key %d: larger than %d bytes", i+1, maxKeyring)
		}
		keys, err := readKeys(kr)
		if err != nil {
			return nil, fmt.Errorf("public key %d: %w", i+1, err)
		}
		v.keys = append(v.keys, keys...)
	}
	if len(v.keys) == 0 {
		return nil, errors.New("no public key to verify with")
	}
	return v, nil
}

func readKeys(b []byte) (openpgp.EntityList, error) {
	t := bytes.TrimSpace(b)
	if !bytes.HasPrefix(t, []byte("-----BEGIN")) {
		keys, err := openpgp.ReadKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("not an OpenPGP public key: %w", err)
		}
		return keys, nil
	}
	var all openpgp.EntityList
	r := bytes.NewReader(t)
	for r.Len() > 0 {
		blk, err := armor.Decode(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not an armored OpenPGP public key: %w", err)
		}
		if blk.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("armored block is a %q, not a public key block", blk.Type)
		}
		keys, err := openpgp.ReadKeyRing(blk.Body)
		if err != nil {
			return nil, fmt.Errorf("public key block: %w", err)
		}
		all = append(all, keys...)
	}
	return all, nil
}

func (v *Verifier) config() *packet.Config {
	return &packet.Config{Time: v.now}
}

// VerifyDetached checks a detached signature (armored or binary) over
// data and returns the signing key's fingerprint.
func (v *Verifier) VerifyDetached(data, sig []byte) (string, error) {
	return v.VerifyDetachedReader(bytes.NewReader(data), sig)
}

// VerifyDetachedReader checks a detached signature (armored or binary)
// over the data read from r, streaming it.
func (v *Verifier) VerifyDetachedReader(r io.Reader, sig []byte) (string, error) {
	var signer *openpgp.Entity
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN")) {
		signer, err = openpgp.CheckArmoredDetachedSignature(v.keys, r, bytes.NewReader(sig), v.config())
	} else {
		signer, err = openpgp.CheckDetachedSignature(v.keys, r, bytes.NewReader(sig), v.config())
	}
	if err != nil {
		return "", v.explain(err)
	}
	return fingerprint(signer), nil
}

// VerifyClearsigned checks a clearsigned document (InRelease) and returns
// the text that was signed and the signing key's fingerprint. Text outside
// the signed block is refused: it would be read by nobody who checks.
func (v *Verifier) VerifyClearsigned(doc []byte) ([]byte, string, error) {
	blk, rest := clearsign.Decode(doc)
	if blk == nil {
		return nil, "", fmt.Errorf("%w: not a clearsigned document", ErrBadSignature)
	}
	if len(bytes.TrimSpace(rest)) > 0 || len(bytes.TrimSpace(doc[:bytes.Index(doc, []byte("-----BEGIN PGP SIGNED MESSAGE-----"))])) > 0 {
		return nil, "", fmt.Errorf("%w: text outside the clearsigned block", ErrBadSignature)
	}
	signer, err := blk.VerifySignature(v.keys, v.config())
	if err != nil {
		return nil, "", v.explain(err)
	}
	return blk.Plaintext, fingerprint(signer), nil
}

func (v *Verifier) explain(err error) error {
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		return fmt.Errorf("%w: signed by a key that is not in the trusted keyring", ErrBadSignature)
	}
	return fmt.Errorf("%w: %v", ErrBadSignature, err)
}
