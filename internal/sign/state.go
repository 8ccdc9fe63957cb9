package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DetachBinaryState returns the same binary detached signatures as
// DetachBinary, over data that is not at hand: sha256State is the
// marshalled state (encoding.BinaryMarshaler) of a SHA-256 that has read
// all of the data and nothing else. A version 4 signature hashes the data,
// then its own trailer, so the trailer can be added to a resumed hash: a
// repository signs a database of many megabytes assembled from stored
// parts without reading it again (pacman's NAME.db.sig).
func (s *Signer) DetachBinaryState(sha256State []byte) ([]byte, error) {
	cfg := s.config()
	var buf bytes.Buffer
	for _, k := range s.keys {
		priv, err := k.signingKey(cfg.Now())
		if err != nil {
			return nil, err
		}
		if priv.PublicKey.Version != 4 {
			return nil, fmt.Errorf("%w: key %s", ErrUnsupportedKey, k.Fingerprint())
		}
		h := sha256.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(sha256State); err != nil {
			return nil, fmt.Errorf("sign: resume SHA-256 state: %w", err)
		}
		lifetime := cfg.SigLifetime()
		sig := &packet.Signature{
			Version:           priv.PublicKey.Version,
			SigType:           packet.SigTypeBinary,
			PubKeyAlgo:        priv.PublicKey.PubKeyAlgo,
			Hash:              hash,
			CreationTime:      cfg.Now(),
			IssuerKeyId:       &priv.PublicKey.KeyId,
			IssuerKeyVersion:  uint8(priv.PublicKey.Version),
			IssuerFingerprint: priv.PublicKey.Fingerprint,
			SigLifetimeSecs:   &lifetime,
		}
		if err := sig.Sign(h, priv, cfg); err != nil {
			return nil, fmt.Errorf("sign: detached signature with key %s: %w", k.Fingerprint(), err)
		}
		if err := sig.Serialize(&buf); err != nil {
			return nil, fmt.Errorf("sign: detached signature with key %s: %w", k.Fingerprint(), err)
		}
	}
	return buf.Bytes(), nil
}
