// Package sign creates OpenPGP signatures over repository metadata
// (RPM repomd.xml.asc, APT InRelease and Release.gpg, pacman .sig) in
// process, with no gpg binary and no agent.
//
// Keys are version 4 OpenPGP keys (RFC 4880, the form gpgv, rpm and pacman
// all read); version 6 keys (RFC 9580) are never generated and are refused
// on import. Every signature uses SHA-256.
package sign

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxKeySize is the largest armored private key ParsePrivate reads.
const MaxKeySize = 1 << 20

// Key algorithms Generate offers.
const (
	// RSA3072 is the default: every client that verifies OpenPGP
	// signatures, however old, accepts it.
	RSA3072 = "rsa3072"
	RSA4096 = "rsa4096"
	// Ed25519 (EdDSA, version 4 "legacy" form, as gpg --quick-gen-key
	// ed25519 makes) signs in microseconds where RSA takes milliseconds.
	// GnuPG 2.1+, apt, pacman, dnf and rpm 4.16+ verify it; yum on
	// RHEL/CentOS 7 does not.
	Ed25519 = "ed25519"
)

// DefaultAlgorithm is what Generate uses when given no algorithm.
const DefaultAlgorithm = RSA3072

// hash is the digest used for self-signatures and every data signature.
// SHA-1 is never used: RHEL 9 rejects SHA-1 signatures.
const hash = crypto.SHA256

var (
	// ErrAlgorithm is returned by Generate for an algorithm it does not offer.
	ErrAlgorithm = errors.New("sign: key algorithm must be rsa3072, rsa4096 or ed25519")
	// ErrKeyTooLarge is returned by ParsePrivate for input over MaxKeySize.
	ErrKeyTooLarge = errors.New("sign: key input exceeds 1 MiB")
	// ErrNotArmored is returned by ParsePrivate for input that is not an
	// ASCII-armored OpenPGP block.
	ErrNotArmored = errors.New("sign: not an ASCII-armored OpenPGP key")
	// ErrNoPrivateKey is returned by ParsePrivate for a public key, or a key
	// whose secret part is missing (such as a gpg stub).
	ErrNoPrivateKey = errors.New("sign: no private key in input: export it with gpg --export-secret-keys --armor")
	// ErrInvalidKey is returned by ParsePrivate for a malformed key packet
	// sequence, or for input holding other than exactly one key.
	ErrInvalidKey = errors.New("sign: invalid OpenPGP private key")
	// ErrUnsupportedKey is returned by ParsePrivate for a key that is not
	// version 4.
	ErrUnsupportedKey = errors.New("sign: unsupported key: only version 4 OpenPGP keys are accepted")
	// ErrPassphraseRequired is returned by ParsePrivate for an encrypted key
	// given no passphrase.
	ErrPassphraseRequired = errors.New("sign: key is encrypted: passphrase required")
	// ErrWrongPassphrase is returned by ParsePrivate when the passphrase
	// does not decrypt the key.
	ErrWrongPassphrase = errors.New("sign: wrong passphrase for encrypted key")
	// ErrNoSigningKey is returned when a key has no valid signing-capable
	// (sub)key, for instance because it expired or was revoked.
	ErrNoSigningKey = errors.New("sign: key has no valid signing key")
)

// Key is an OpenPGP version 4 key whose private part is present and
// decrypted, ready to sign. A Key is not modified after it is built and may
// be shared by goroutines.
type Key struct {
	entity *openpgp.Entity
}

// keyConfig returns the go-crypto configuration for key generation and
// serialisation at now.
func keyConfig(now time.Time, algo string) (*packet.Config, error) {
	cfg := &packet.Config{
		DefaultHash: hash,
		Time:        func() time.Time { return now },
		V6Keys:      false,
	}
	switch algo {
	case RSA3072, RSA4096:
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = 3072
		if algo == RSA4096 {
			cfg.RSABits = 4096
		}
	case Ed25519:
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
		cfg.Curve = packet.Curve25519
	default:
		return nil, fmt.Errorf("%w: got %q", ErrAlgorithm, algo)
	}
	return cfg, nil
}

// Generate creates a key for name and email, created at now, with no expiry
// and SHA-256 as its preferred hash. algo is RSA3072, RSA4096 or Ed25519;
// "" means DefaultAlgorithm. The primary key signs and certifies; go-crypto
// also adds an encryption subkey, which packyard never uses.
func Generate(name, email string, algo string, now time.Time) (*Key, error) {
	if algo == "" {
		algo = DefaultAlgorithm
	}
	cfg, err := keyConfig(now, algo)
	if err != nil {
		return nil, err
	}
	e, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		return nil, fmt.Errorf("sign: generate key for %q <%s>: %w", name, email, err)
	}
	return &Key{entity: e}, nil
}

// ParsePrivate reads one ASCII-armored OpenPGP private key (as written by
// gpg --export-secret-keys --armor or ArmoredPrivate). An encrypted key is
// decrypted with passphrase, which is ignored for a key stored in the clear.
// Input larger than MaxKeySize is refused before it is parsed.
func ParsePrivate(armored []byte, passphrase []byte) (*Key, error) {
	if len(armored) > MaxKeySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrKeyTooLarge, len(armored))
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotArmored, err)
	}
	switch block.Type {
	case openpgp.PrivateKeyType:
	case openpgp.PublicKeyType:
		return nil, fmt.Errorf("%w: got a public key block", ErrNoPrivateKey)
	default:
		return nil, fmt.Errorf("%w: armored block is %q", ErrNotArmored, block.Type)
	}
	list, err := openpgp.ReadKeyRing(io.LimitReader(block.Body, MaxKeySize))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("%w: input holds %d keys, want 1", ErrInvalidKey, len(list))
	}
	e := list[0]
	if e.PrimaryKey == nil || e.PrimaryKey.Version != 4 {
		return nil, ErrUnsupportedKey
	}
	if e.PrivateKey == nil || e.PrivateKey.Dummy() {
		return nil, ErrNoPrivateKey
	}
	fpr := fingerprint(e)
	if encrypted(e) {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("%w (key %s)", ErrPassphraseRequired, fpr)
		}
		if err := e.DecryptPrivateKeys(passphrase); err != nil {
			return nil, fmt.Errorf("%w (key %s): %v", ErrWrongPassphrase, fpr, err)
		}
	}
	k := &Key{entity: e}
	if _, err := k.signingKey(time.Now()); err != nil {
		return nil, err
	}
	return k, nil
}

// encrypted reports whether any secret (sub)key of e is still encrypted.
func encrypted(e *openpgp.Entity) bool {
	if e.PrivateKey.Encrypted {
		return true
	}
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && !s.PrivateKey.Dummy() && s.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// signingKey returns the private key that signs for k at now: the primary
// key or a signing subkey, whichever go-crypto selects as valid.
func (k *Key) signingKey(now time.Time) (*packet.PrivateKey, error) {
	sk, ok := k.entity.SigningKey(now)
	if !ok || sk.PrivateKey == nil || sk.PrivateKey.Dummy() || sk.PrivateKey.Encrypted {
		return nil, fmt.Errorf("%w (key %s at %s)", ErrNoSigningKey, k.Fingerprint(), now.UTC().Format(time.RFC3339))
	}
	return sk.PrivateKey, nil
}

// ArmoredPrivate returns the key, secret part unencrypted, as an
// ASCII-armored private key block. Store it as a secret.
func (k *Key) ArmoredPrivate() ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, fmt.Errorf("sign: armor private key %s: %w", k.Fingerprint(), err)
	}
	// Without re-signing: the self-signatures made at generation or found
	// on import stay byte for byte as they were.
	if err := k.entity.SerializePrivateWithoutSigning(w, nil); err != nil {
		return nil, fmt.Errorf("sign: serialize private key %s: %w", k.Fingerprint(), err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("sign: armor private key %s: %w", k.Fingerprint(), err)
	}
	return endLine(buf.Bytes()), nil
}

// ArmoredPublic returns the public key as an ASCII-armored public key block,
// the form published for rpm --import and pacman-key --add.
func (k *Key) ArmoredPublic() ([]byte, error) {
	return armorPublic([]*Key{k})
}

// BinaryPublic returns the public key as binary OpenPGP packets, the form
// APT's signed-by option and gpgv --keyring read.
func (k *Key) BinaryPublic() ([]byte, error) {
	return binaryPublic([]*Key{k})
}

// Fingerprint returns the primary key's 40-character upper-case hex
// fingerprint.
func (k *Key) Fingerprint() string {
	return fingerprint(k.entity)
}

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

func binaryPublic(keys []*Key) ([]byte, error) {
	var buf bytes.Buffer
	for _, k := range keys {
		if err := k.entity.Serialize(&buf); err != nil {
			return nil, fmt.Errorf("sign: serialize public key %s: %w", k.Fingerprint(), err)
		}
	}
	return buf.Bytes(), nil
}

func armorPublic(keys []*Key) ([]byte, error) {
	bin, err := binaryPublic(keys)
	if err != nil {
		return nil, err
	}
	return armorBytes(openpgp.PublicKeyType, bin)
}

func armorBytes(blockType string, bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, blockType, nil)
	if err != nil {
		return nil, fmt.Errorf("sign: armor %s: %w", blockType, err)
	}
	if _, err := w.Write(bin); err != nil {
		return nil, fmt.Errorf("sign: armor %s: %w", blockType, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("sign: armor %s: %w", blockType, err)
	}
	return endLine(buf.Bytes()), nil
}

// endLine ends b with a newline. go-crypto's armor stops right after the
// closing "-----", and gpgv then fails to find the end of a clearsigned
// document's signature block ("invalid packet", exit 2) although every
// signature is good; gpg itself always ends its output with a newline.
func endLine(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}
