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
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var (
	// ErrNoKeys is returned by NewSigner when given no keys.
	ErrNoKeys = errors.New("sign: signer needs at least one key")
	// ErrDuplicateKey is returned by NewSigner when a key is given twice.
	ErrDuplicateKey = errors.New("sign: same key given twice")
)

// Signer signs data with every one of its keys: one key normally, two
// while a key is being rotated, so clients that trust either the old or the
// new key accept the result. It is safe for concurrent use once built, as
// long as Clock is not changed.
type Signer struct {
	keys []*Key

	// Clock, if not nil, gives the signature creation time; nil means
	// time.Now. Set it before the Signer is shared; tests use it to make
	// output reproducible in time.
	Clock func() time.Time
}

// NewSigner returns a Signer over keys, in the order given; signatures
// appear in that order.
func NewSigner(keys ...*Key) (*Signer, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		if k == nil || k.entity == nil {
			return nil, fmt.Errorf("sign: key %d is nil", i)
		}
		fpr := k.Fingerprint()
		if seen[fpr] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateKey, fpr)
		}
		seen[fpr] = true
	}
	return &Signer{keys: append([]*Key(nil), keys...)}, nil
}

// config returns the go-crypto configuration for one signing operation,
// with the creation time fixed so every signature of it agrees.
func (s *Signer) config() *packet.Config {
	now := time.Now()
	if s.Clock != nil {
		now = s.Clock()
	}
	return &packet.Config{
		DefaultHash: hash,
		Time:        func() time.Time { return now },
	}
}

// DetachBinary returns binary detached signatures over data, one signature
// packet per key, concatenated: the form of pacman's .sig files.
func (s *Signer) DetachBinary(data []byte) ([]byte, error) {
	cfg := s.config()
	var buf bytes.Buffer
	for _, k := range s.keys {
		if _, err := k.signingKey(cfg.Now()); err != nil {
			return nil, err
		}
		if err := openpgp.DetachSign(&buf, k.entity, bytes.NewReader(data), cfg); err != nil {
			return nil, fmt.Errorf("sign: detached signature with key %s: %w", k.Fingerprint(), err)
		}
	}
	return buf.Bytes(), nil
}

// DetachArmored returns the signatures of DetachBinary in one ASCII-armored
// PGP SIGNATURE block, the form of repomd.xml.asc and Release.gpg; gpgv,
// rpm and dnf accept several signature packets in one block.
func (s *Signer) DetachArmored(data []byte) ([]byte, error) {
	bin, err := s.DetachBinary(data)
	if err != nil {
		return nil, err
	}
	return armorBytes(openpgp.SignatureType, bin)
}

// ClearSign returns data as a cleartext-signed document (RFC 4880 section
// 7) signed by every key, the form of APT's InRelease. Lines starting with
// "-" are dash-escaped, and trailing spaces and tabs are dropped from every
// line, since section 7.1 leaves them out of the signed text; APT's Release
// files have none.
func (s *Signer) ClearSign(data []byte) ([]byte, error) {
	cfg := s.config()
	privs := make([]*packet.PrivateKey, 0, len(s.keys))
	for _, k := range s.keys {
		pk, err := k.signingKey(cfg.Now())
		if err != nil {
			return nil, err
		}
		privs = append(privs, pk)
	}
	var buf bytes.Buffer
	w, err := clearsign.EncodeMulti(&buf, privs, cfg)
	if err != nil {
		return nil, fmt.Errorf("sign: clearsign: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("sign: clearsign: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("sign: clearsign: %w", err)
	}
	return addChecksum(buf.Bytes())
}

// sigStart begins the signature block of a clearsigned document.
var sigStart = []byte("\n-----BEGIN PGP SIGNATURE-----")

// addChecksum re-armors the signature block of the clearsigned document
// doc with a CRC-24 checksum line. go-crypto leaves it out (RFC 9580 makes
// it optional), but gpgv 2.2 (Debian 12, what apt runs) then reads the
// END line as base64, says "invalid packet" and exits 2 even though every
// signature is good.
func addChecksum(doc []byte) ([]byte, error) {
	i := bytes.LastIndex(doc, sigStart)
	if i < 0 {
		return nil, fmt.Errorf("sign: clearsign: no signature block in output")
	}
	block, err := armor.Decode(bytes.NewReader(doc[i+1:]))
	if err != nil {
		return nil, fmt.Errorf("sign: clearsign: re-read signature block: %w", err)
	}
	sigs, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, fmt.Errorf("sign: clearsign: re-read signature block: %w", err)
	}
	armored, err := armorBytes(openpgp.SignatureType, sigs)
	if err != nil {
		return nil, err
	}
	return append(doc[:i+1:i+1], armored...), nil
}

// PublicKeys returns the public keys of every key as one ASCII-armored
// public key block.
func (s *Signer) PublicKeys() ([]byte, error) {
	return armorPublic(s.keys)
}

// PublicKeysBinary returns the public keys of every key as one binary
// keyring, the form APT's signed-by option and gpgv --keyring read.
func (s *Signer) PublicKeysBinary() ([]byte, error) {
	return binaryPublic(s.keys)
}
