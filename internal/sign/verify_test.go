package sign

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifier(t *testing.T) {
	k1, k2 := keys(t)
	s1, err := NewSigner(k1)
	if err != nil {
		t.Fatal(err)
	}
	pub1, _ := k1.ArmoredPublic()
	bin2, _ := k2.BinaryPublic()
	v, err := NewVerifier(pub1)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("<repomd>…</repomd>\n")
	arm, _ := s1.DetachArmored(data)
	bin, _ := s1.DetachBinary(data)
	for name, sig := range map[string][]byte{"armored": arm, "binary": bin} {
		fp, err := v.VerifyDetached(data, sig)
		if err != nil || fp != k1.Fingerprint() {
			t.Errorf("%s: %q %v", name, fp, err)
		}
		if _, err := v.VerifyDetached(append(append([]byte(nil), data...), 'x'), sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s over changed data: %v", name, err)
		}
	}
	// A key that is not trusted.
	s2, _ := NewSigner(k2)
	other, _ := s2.DetachArmored(data)
	if _, err := v.VerifyDetached(data, other); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "not in the trusted keyring") {
		t.Errorf("signature by an untrusted key: %v", err)
	}
	// Two keyrings, one binary: either key verifies.
	v2, err := NewVerifier(pub1, bin2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v2.VerifyDetached(data, other); err != nil {
		t.Errorf("second key of the keyring: %v", err)
	}

	text := []byte("Origin: Debian\nSuite: stable\nSHA256:\n 00 1 main/x\n")
	cs, _ := s1.ClearSign(text)
	got, fp, err := v.VerifyClearsigned(cs)
	if err != nil || fp != k1.Fingerprint() || !bytes.Equal(bytes.TrimRight(got, "\n"), bytes.TrimRight(text, "\n")) {
		t.Errorf("clearsigned: %q %q %v", got, fp, err)
	}
	for name, bad := range map[string][]byte{
		"changed text":      bytes.Replace(cs, []byte("stable"), []byte("stabl3"), 1),
		"text before":       append([]byte("Suite: evil\n"), cs...),
		"text after":        append(append([]byte(nil), cs...), []byte("Suite: evil\n")...),
		"not clearsigned":   text,
		"untrusted signer":  must(s2.ClearSign(text)),
		"detached, not cs":  arm,
		"empty":             nil,
		"truncated":         cs[:len(cs)/2],
		"garbage signature": bytes.Replace(cs, []byte("-----BEGIN PGP SIGNATURE-----\n"), []byte("-----BEGIN PGP SIGNATURE-----\nAAAA\n"), 1),
	} {
		if _, _, err := v.VerifyClearsigned(bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
	for name, bad := range map[string][]byte{"empty": nil, "garbage": []byte("hello"), "private block": []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n-----END PGP PRIVATE KEY BLOCK-----\n")} {
		if _, err := NewVerifier(bad); err == nil {
			t.Errorf("NewVerifier(%s): no error", name)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestVerifierGnuPG: signatures made by the real gpg (as distributions
// sign repomd.xml and InRelease) verify with the key gpg exports.
func TestVerifierGnuPG(t *testing.T) {
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatal("gpg is not installed (Debian package gpg)")
		}
		t.Skip("gpg is not installed")
	}
	home := t.TempDir()
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	run(nil, "--quick-gen-key", "Upstream Archive <archive@example.com>", "ed25519", "sign", "never")
	pub := run(nil, "--armor", "--export")
	data := []byte("Suite: stable\nSHA256:\n 00 1 main/x\n")
	file := filepath.Join(home, "Release")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	det := run(nil, "--armor", "--detach-sign", "--output", "-", file)
	cs := run(nil, "--clearsign", "--output", "-", file)
	v, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyDetached(data, det); err != nil {
		t.Errorf("gpg detached signature: %v", err)
	}
	got, _, err := v.VerifyClearsigned(cs)
	if err != nil || !strings.Contains(string(got), "Suite: stable") {
		t.Errorf("gpg clearsigned: %q %v", got, err)
	}
}
