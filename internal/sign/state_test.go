package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// A signature made from a resumed SHA-256 state verifies like one made
// over the data: with go-crypto, and with the real gpgv.
func TestDetachBinaryState(t *testing.T) {
	k1, _ := keys(t)
	k2 := ed25519Key(t) // an RSA and an EdDSA signature
	s, err := NewSigner(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	at := keyTime.Add(time.Minute)
	s.Clock = func() time.Time { return at }
	data := bytes.Repeat([]byte("a database of many parts\n"), 5000)
	h := sha256.New()
	h.Write(data[:777])
	h.Write(data[777:])
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.DetachBinaryState(state)
	if err != nil {
		t.Fatal(err)
	}
	checkSigs(t, sigPackets(t, sig), []*Key{k1, k2}, at)
	other := append(bytes.Clone(data), '!')
	for _, k := range []*Key{k1, k2} {
		ring := openpgp.EntityList{k.entity}
		if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(data), bytes.NewReader(sig), verifyConfig(at)); err != nil {
			t.Errorf("key %s: %v", k.Fingerprint(), err)
		}
		if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(other), bytes.NewReader(sig), verifyConfig(at)); err == nil {
			t.Errorf("key %s: a signature over the state verified other data", k.Fingerprint())
		}
	}
	if _, err := s.DetachBinaryState([]byte("not a state")); err == nil {
		t.Fatal("a garbage state was accepted")
	}

	gpgv, err := exec.LookPath("gpgv")
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("gpgv is required (PACKYARD_REQUIRE_REAL=1): %v", err)
		}
		t.Skip("gpgv not found")
	}
	dir := t.TempDir()
	// gpgv exits 2 when any signature's key is missing, so it gets both.
	pub, err := s.PublicKeysBinary()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"key.gpg": pub, "db": data, "db.sig": sig} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(gpgv, "--keyring", filepath.Join(dir, "key.gpg"), filepath.Join(dir, "db.sig"), filepath.Join(dir, "db")).CombinedOutput()
	if err != nil {
		t.Fatalf("gpgv: %v\n%s", err, out)
	}
}
