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

// DefaultBits is the RSA modulus size Generate uses when bits is 0.
const DefaultBits = 3072

// hash is the digest used for self-signatures and every data signature.
// SHA-1 is never used: RHEL 9 rejects SHA-1 signatures.
const hash = crypto.SHA256

var (
	// ErrKeySize is returned by Generate for an RSA size other than 3072 or 4096.
	ErrKeySize = errors.New("sign: RSA key size must be 3072 or 4096")
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
func keyConfig(now time.Time, bits int) *packet.Config {
	return &packet.Config{
		Algorithm:   packet.PubKeyAlgoRSA,
		RSABits:     bits,
		DefaultHash: hash,
		Time:        func() time.Time { return now },
		V6Keys:      false,
	}
}

// Generate creates an RSA key for name and email, created at now, with no
// expiry and SHA-256 as its preferred hash. bits is 3072 (or 0, meaning
// DefaultBits) or 4096. The primary key signs and certifies; go-crypto also
// adds an encryption subkey, which packyard never uses.
func Generate(name, email string, bits int, now time.Time) (*Key, error) {
	if bits == 0 {
		bits = DefaultBits
	}
	if bits != 3072 && bits != 4096 {
		return nil, fmt.Errorf("%w: got %d", ErrKeySize, bits)
	}
	e, err := openpgp.NewEntity(name, "", email, keyConfig(now, bits))
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
