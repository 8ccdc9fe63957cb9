// Package gnupg gives the benchmarks' anchor tools (reprepro, aptly,
// repo-add) a throw-away GnuPG home with one signing key of the algorithm
// packyard's key has, so that they pay for the same signatures as packyard
// does, and checks signatures with gpgv.
package gnupg

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/packyard/packyard/bench/internal/proc"
)

// The key algorithms New offers, named as packyard names them
// (PACKYARD_DEFAULT_KEY_ALGORITHM, sign.RSA3072 and sign.Ed25519).
const (
	RSA3072 = "rsa3072"
	Ed25519 = "ed25519"
)

// AlgorithmName is the name of algo for a report: "RSA 3072", "Ed25519".
func AlgorithmName(algo string) string {
	switch algo {
	case RSA3072:
		return "RSA 3072"
	case Ed25519:
		return "Ed25519"
	}
	return algo
}

// Home is a GnuPG home holding one signing key without a passphrase.
type Home struct {
	Dir         string
	Fingerprint string
	// Algorithm is the key's, RSA3072 or Ed25519.
	Algorithm string
	// Pubkey is the path of the public key, binary, as gpgv --keyring
	// reads it.
	Pubkey string
}

// New creates dir and generates a signing key of algorithm algo: RSA3072,
// what packyard's default key is unless configured otherwise
// (sign.DefaultAlgorithm), or Ed25519, what it is with
// PACKYARD_DEFAULT_KEY_ALGORITHM=ed25519.
func New(dir, algo string) (*Home, error) {
	if algo != RSA3072 && algo != Ed25519 {
		return nil, fmt.Errorf("gnupg: key algorithm %q is not %s or %s", algo, RSA3072, Ed25519)
	}
	if _, err := exec.LookPath("gpg"); err != nil {
		return nil, fmt.Errorf("gpg not found (apt-get install gnupg): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	g := &Home{Dir: dir, Algorithm: algo, Pubkey: filepath.Join(dir, "bench-key.gpg")}
	// gpg-agent's socket lives in the home: a long path would not fit.
	if len(filepath.Join(dir, "S.gpg-agent.browser")) > 100 {
		return nil, fmt.Errorf("GnuPG home %s: path too long for gpg-agent's sockets; use a shorter -work", dir)
	}
	if _, err := g.Run("--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", "packyard bench anchor <bench@example.invalid>", algo, "sign", "never"); err != nil {
		return nil, err
	}
	out, err := g.Run("--batch", "--with-colons", "--list-secret-keys")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			g.Fingerprint = f[9]
			break
		}
	}
	if g.Fingerprint == "" {
		return nil, fmt.Errorf("gpg: no fingerprint in --list-secret-keys:\n%s", out)
	}
	pub, err := g.Run("--batch", "--export", g.Fingerprint)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(g.Pubkey, []byte(pub), 0o644); err != nil {
		return nil, err
	}
	return g, nil
}

// Env is the environment for tools that sign with this key.
func (g *Home) Env() []string {
	return append(os.Environ(), "GNUPGHOME="+g.Dir)
}

// Run runs gpg in this home and returns its standard output.
func (g *Home) Run(args ...string) (string, error) {
	cmd := exec.Command("gpg", args...)
	cmd.Env = g.Env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("gpg %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// AgentPIDs returns the gpg-agent of this home, which does the signing
// for gpg, so that its CPU time counts as the tool's.
func (g *Home) AgentPIDs() []int {
	return proc.Find(func(args []string) bool {
		return strings.HasSuffix(args[0], "gpg-agent") && slices.Contains(args, g.Dir)
	})
}

// Close stops the gpg-agent that signing started in this home.
func (g *Home) Close() {
	cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
	cmd.Env = g.Env()
	_ = cmd.Run()
}

// Verify checks an inline-signed file (InRelease) against the keys of
// keyring (a binary public key file).
func Verify(keyring, path string) error {
	return gpgv("--keyring", keyring, path)
}

// VerifyDetached checks a detached signature (Release.gpg, NAME.db.sig)
// of data against the keys of keyring.
func VerifyDetached(keyring, sig, data string) error {
	return gpgv("--keyring", keyring, sig, data)
}

func gpgv(args ...string) error {
	out, err := exec.Command("gpgv", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("gpgv %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
