package main

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

// gnupg is a throw-away GnuPG home holding one signing key without a
// passphrase, with which reprepro and aptly sign their Release files.
type gnupg struct {
	home        string
	fingerprint string
	// pubkey is the public key, binary, as gpgv --keyring reads it.
	pubkey string
}

// newGnuPG creates dir and generates an RSA key of the size packyard's
// default key has (sign.DefaultBits, 3072), so that the anchors pay for
// the same signatures as packyard does.
func newGnuPG(dir string) (*gnupg, error) {
	if _, err := exec.LookPath("gpg"); err != nil {
		return nil, fmt.Errorf("gpg not found (apt-get install gnupg): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	g := &gnupg{home: dir, pubkey: filepath.Join(dir, "bench-key.gpg")}
	// gpg-agent's socket lives in the home: a long path would not fit.
	if len(filepath.Join(dir, "S.gpg-agent.browser")) > 100 {
		return nil, fmt.Errorf("GnuPG home %s: path too long for gpg-agent's sockets; use a shorter -work", dir)
	}
	if _, err := g.run("--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", "packyard bench anchor <bench@example.invalid>", "rsa3072", "sign", "never"); err != nil {
		return nil, err
	}
	out, err := g.run("--batch", "--with-colons", "--list-secret-keys")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			g.fingerprint = f[9]
			break
		}
	}
	if g.fingerprint == "" {
		return nil, fmt.Errorf("gpg: no fingerprint in --list-secret-keys:\n%s", out)
	}
	pub, err := g.run("--batch", "--export", g.fingerprint)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(g.pubkey, []byte(pub), 0o644); err != nil {
		return nil, err
	}
	return g, nil
}

// env is the environment for tools that sign with this key.
func (g *gnupg) env() []string {
	return append(os.Environ(), "GNUPGHOME="+g.home)
}

func (g *gnupg) run(args ...string) (string, error) {
	cmd := exec.Command("gpg", args...)
	cmd.Env = g.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("gpg %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// agentPIDs returns the gpg-agent of this home, which does the signing
// for gpg, so that its CPU time counts as the tool's.
func (g *gnupg) agentPIDs() []int {
	return proc.Find(func(args []string) bool {
		return strings.HasSuffix(args[0], "gpg-agent") && slices.Contains(args, g.home)
	})
}

// close stops the gpg-agent that signing started in this home.
func (g *gnupg) close() {
	cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
	cmd.Env = g.env()
	_ = cmd.Run()
}

// gpgvVerify checks an inline-signed file (InRelease) against the keys of
// keyring (a binary public key file).
func gpgvVerify(keyring, path string) error {
	cmd := exec.Command("gpgv", "--keyring", keyring, path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("gpgv --keyring %s %s: %w\n%s", keyring, path, err, out)
	}
	return nil
}

// gpgvVerifyDetached checks a detached signature (Release.gpg) of data.
func gpgvVerifyDetached(keyring, sig, data string) error {
	cmd := exec.Command("gpgv", "--keyring", keyring, sig, data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("gpgv --keyring %s %s %s: %w\n%s", keyring, sig, data, err, out)
	}
	return nil
}
