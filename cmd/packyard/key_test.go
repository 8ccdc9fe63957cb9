package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/packyard/packyard/internal/client"
	"github.com/packyard/packyard/internal/config"
)

func fprOf(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// keyFingerprints parses public keys (armored or binary) and returns their
// fingerprints; it fails the test on private key material.
func keyFingerprints(t *testing.T, b []byte) []string {
	t.Helper()
	var ring openpgp.EntityList
	var err error
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		ring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("parse keys: %v", err)
	}
	var out []string
	for _, e := range ring {
		if e.PrivateKey != nil {
			t.Fatalf("key %s carries its private key", fprOf(e))
		}
		out = append(out, fprOf(e))
	}
	return out
}

// seedFingerprint returns the fingerprint of the fixed test key.
func seedFingerprint(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(seedKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return fprOf(ring[0])
}

// encryptedSeedKey returns the fixed test key, encrypted with pass, as gpg
// --export-secret-keys --armor writes a protected key.
func encryptedSeedKey(t *testing.T, pass string) []byte {
	t.Helper()
	b, err := os.ReadFile(seedKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := ring[0].EncryptPrivateKeys([]byte(pass), nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring[0].SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeOut[T any](t *testing.T, r cliResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("output %q is not JSON: %v", r.stdout, err)
	}
	return v
}

func signers(r client.Repo) []string {
	out := []string{}
	for _, k := range r.Signing {
		out = append(out, k.Name+"="+k.Fingerprint)
	}
	return out
}

func TestKeyCommands(t *testing.T) {
	t.Setenv("PACKYARD_KEY_PASSPHRASE", "")
	s := newServerOpts(t, true)
	seedFpr := seedFingerprint(t)

	keys := decodeOut[[]client.Key](t, s.run(t, "key", "list", "-o", "json").must(t, "key list"))
	if len(keys) != 1 || keys[0].Name != "default" || keys[0].Fingerprint != seedFpr || !keys[0].Default || len(keys[0].Repos) != 0 {
		t.Fatalf("key list at start: %+v", keys)
	}

	r := s.run(t, "key", "generate", "rel", "--uid", "Release Team", "--email", "rel@example.com").must(t, "key generate")
	m := regexp.MustCompile(`^generated key "rel"\nfingerprint: ([0-9A-F]{40})\nalgorithm:   rsa3072\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("key generate printed %q", r.stdout)
	}
	relFpr := m[1]
	if relFpr == seedFpr {
		t.Fatal("generated key has the default key's fingerprint")
	}
	if r := s.run(t, "key", "generate", "rel"); !isStatus(r.err, http.StatusConflict) {
		t.Errorf("key generate of an existing name: %v", r.err)
	}
	if r := s.run(t, "key", "generate", "tiny", "--bits", "1024"); !isStatus(r.err, http.StatusBadRequest) || !strings.Contains(r.err.Error(), "rsa3072") {
		t.Errorf("key generate --bits 1024: %v", r.err)
	}
	if r := s.run(t, "key", "generate", "dsa", "--algorithm", "dsa"); !isStatus(r.err, http.StatusBadRequest) || !strings.Contains(r.err.Error(), "ed25519") {
		t.Errorf("key generate --algorithm dsa: %v", r.err)
	}
	r = s.run(t, "key", "generate", "fast", "--algorithm", "ed25519").must(t, "key generate --algorithm ed25519")
	if !regexp.MustCompile(`\nalgorithm:   ed25519\n$`).MatchString(r.stdout) {
		t.Errorf("key generate --algorithm ed25519 printed %q", r.stdout)
	}

	// Export: armored by default, binary with --binary; public only.
	r = s.run(t, "key", "export", "rel").must(t, "key export")
	if !strings.HasPrefix(r.stdout, "-----BEGIN PGP PUBLIC KEY BLOCK-----") || strings.Contains(r.stdout, "PRIVATE") {
		t.Errorf("key export printed %q…", r.stdout[:min(len(r.stdout), 60)])
	}
	if got := keyFingerprints(t, []byte(r.stdout)); !slices.Equal(got, []string{relFpr}) {
		t.Errorf("key export holds %v, want %s", got, relFpr)
	}
	r = s.run(t, "key", "export", "rel", "--binary").must(t, "key export --binary")
	if strings.HasPrefix(r.stdout, "-----") {
		t.Errorf("key export --binary is armored")
	}
	if got := keyFingerprints(t, []byte(r.stdout)); !slices.Equal(got, []string{relFpr}) {
		t.Errorf("key export --binary holds %v, want %s", got, relFpr)
	}
	// Public parts need no token.
	r = runCLI(t, "--server", s.url, "key", "export", "default").must(t, "key export without a token")
	if got := keyFingerprints(t, []byte(r.stdout)); !slices.Equal(got, []string{seedFpr}) {
		t.Errorf("key export default holds %v", got)
	}
	if r := s.run(t, "key", "export", "missing"); !isStatus(r.err, http.StatusNotFound) {
		t.Errorf("key export missing: %v", r.err)
	}

	// Import an encrypted key: passphrase from a file (first line; CRLF
	// is not part of it), or from PACKYARD_KEY_PASSPHRASE; the file wins.
	dir := t.TempDir()
	pass := "correct horse"
	encFile := writeFile(t, dir, "enc.asc", encryptedSeedKey(t, pass))
	passFile := writeFile(t, dir, "pass", []byte(pass+"\r\nsecond line is not the passphrase\n"))
	wrongFile := writeFile(t, dir, "wrong", []byte("not it\n"))
	if r := s.run(t, "key", "import", "nopass", encFile); !isStatus(r.err, http.StatusBadRequest) || !strings.Contains(r.err.Error(), "passphrase") {
		t.Errorf("key import of an encrypted key without a passphrase: %v", r.err)
	}
	if r := s.run(t, "key", "import", "wrong", encFile, "--passphrase-file", wrongFile); !isStatus(r.err, http.StatusBadRequest) || !strings.Contains(r.err.Error(), "wrong passphrase") {
		t.Errorf("key import with a wrong passphrase: %v", r.err)
	}
	if r := s.run(t, "key", "import", "x", encFile, "--passphrase-file", filepath.Join(dir, "missing")); r.err == nil || !strings.Contains(r.err.Error(), "missing") {
		t.Errorf("key import with a missing passphrase file: %v", r.err)
	}
	r = s.run(t, "key", "import", "fromfile", encFile, "--passphrase-file", passFile).must(t, "key import --passphrase-file")
	if want := "imported key \"fromfile\"\nfingerprint: " + seedFpr + "\n"; !strings.HasPrefix(r.stdout, want) {
		t.Errorf("key import printed %q, want it to start %q", r.stdout, want)
	}
	t.Setenv("PACKYARD_KEY_PASSPHRASE", pass)
	k := decodeOut[client.Key](t, s.run(t, "key", "import", "fromenv", encFile, "-o", "json").must(t, "key import with PACKYARD_KEY_PASSPHRASE"))
	if k.Name != "fromenv" || k.Fingerprint != seedFpr {
		t.Errorf("key import -o json: %+v", k)
	}
	t.Setenv("PACKYARD_KEY_PASSPHRASE", "wrong")
	s.run(t, "key", "import", "fileover", encFile, "--passphrase-file", passFile).must(t, "key import: --passphrase-file over the environment")
	t.Setenv("PACKYARD_KEY_PASSPHRASE", "")
	if r := s.run(t, "key", "import", "nofile", filepath.Join(dir, "nope.asc")); r.err == nil || !strings.Contains(r.err.Error(), "nope.asc") {
		t.Errorf("key import of a missing file: %v", r.err)
	}
	for _, name := range []string{"fromfile", "fromenv", "fileover"} {
		if _, err := os.Stat(filepath.Join(s.data, "keys", name+".asc")); err != nil {
			t.Errorf("imported key %s is not in the key directory: %v", name, err)
		}
	}

	// Repositories: unsigned, or signed by the keys named.
	if r := s.run(t, "repo", "create", "x", "--format", "rpm", "--unsigned", "--key", "rel"); r.err == nil || !strings.Contains(r.err.Error(), "--unsigned") {
		t.Errorf("repo create --unsigned --key: %v", r.err)
	}
	plain := decodeOut[client.Repo](t, s.run(t, "repo", "create", "plain", "--format", "rpm", "--unsigned", "-o", "json").must(t, "repo create --unsigned"))
	if plain.Signing == nil || len(plain.Signing) != 0 {
		t.Errorf("repo create --unsigned: signing %v", plain.Signing)
	}
	dflt := decodeOut[client.Repo](t, s.run(t, "repo", "create", "dflt", "--format", "rpm", "-o", "json").must(t, "repo create"))
	if got := signers(dflt); !slices.Equal(got, []string{"default=" + seedFpr}) {
		t.Errorf("repo create without --key: signing %v", got)
	}
	el := decodeOut[client.Repo](t, s.run(t, "repo", "create", "el9", "--format", "rpm", "--key", "rel", "-o", "json").must(t, "repo create --key"))
	if got := signers(el); !slices.Equal(got, []string{"rel=" + relFpr}) {
		t.Errorf("repo create --key rel: signing %v", got)
	}
	two := decodeOut[client.Repo](t, s.run(t, "repo", "create", "two", "--format", "rpm", "--key", "rel", "--key", "default", "-o", "json").must(t, "repo create --key --key"))
	if got := signers(two); !slices.Equal(got, []string{"rel=" + relFpr, "default=" + seedFpr}) {
		t.Errorf("repo create --key rel --key default: signing %v", got)
	}
	if r := s.run(t, "repo", "create", "bad", "--format", "rpm", "--key", "nope"); !isStatus(r.err, http.StatusBadRequest) || !strings.Contains(r.err.Error(), "nope") {
		t.Errorf("repo create --key nope: %v", r.err)
	}

	r = s.run(t, "repo", "show", "el9").must(t, "repo show")
	if !strings.Contains(r.stdout, "\nsigned by:   rel "+relFpr+"\n") {
		t.Errorf("repo show el9:\n%s", r.stdout)
	}
	r = s.run(t, "repo", "show", "plain").must(t, "repo show unsigned")
	if !strings.Contains(r.stdout, "\nsigned by:   nobody (unsigned)\n") {
		t.Errorf("repo show plain:\n%s", r.stdout)
	}

	// Rotation: both keys, then the new one alone; each republishes.
	gen := el.CurrentGeneration
	r = s.run(t, "repo", "sign", "el9", "default", "rel").must(t, "repo sign el9 default rel")
	lines := regexp.MustCompile(`(?m)^el9 signed by (\S+) ([0-9A-F]{40}) \(generation (\d+)\)$`).FindAllStringSubmatch(r.stdout, -1)
	if len(lines) != 2 || lines[0][1] != "default" || lines[0][2] != seedFpr || lines[1][1] != "rel" || lines[1][2] != relFpr {
		t.Fatalf("repo sign el9 default rel printed:\n%s", r.stdout)
	}
	shown := decodeOut[struct {
		Repo client.Repo `json:"repo"`
	}](t, s.run(t, "repo", "show", "el9", "-o", "json").must(t, "repo show -o json"))
	if shown.Repo.CurrentGeneration <= gen || lines[0][3] != lines[1][3] || lines[0][3] != itoa(shown.Repo.CurrentGeneration) {
		t.Errorf("generation %d before repo sign, %s printed, %d now", gen, lines[0][3], shown.Repo.CurrentGeneration)
	}
	gen = shown.Repo.CurrentGeneration
	r = s.run(t, "repo", "show", "el9").must(t, "repo show")
	if !strings.Contains(r.stdout, "\nsigned by:   default "+seedFpr+"\nsigned by:   rel "+relFpr+"\n") {
		t.Errorf("repo show after signing with two keys:\n%s", r.stdout)
	}
	r = s.run(t, "repo", "sign", "el9", "rel", "-o", "json").must(t, "repo sign el9 rel")
	after := decodeOut[client.Repo](t, r)
	if got := signers(after); !slices.Equal(got, []string{"rel=" + relFpr}) || after.CurrentGeneration <= gen {
		t.Errorf("repo sign el9 rel: signing %v, generation %d (was %d)", got, after.CurrentGeneration, gen)
	}
	for _, args := range [][]string{
		{"repo", "sign", "el9"},
		{"repo", "sign", "el9", "rel", "--unsigned"},
		{"repo", "sign", "el9", "a", "b", "c"},
	} {
		if r := s.run(t, args...); r.err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
	if r := s.run(t, "repo", "sign", "el9", "nope"); !isStatus(r.err, http.StatusBadRequest) {
		t.Errorf("repo sign el9 nope: %v", r.err)
	}
	if r := s.run(t, "repo", "sign", "el9", "rel", "rel"); !isStatus(r.err, http.StatusBadRequest) {
		t.Errorf("repo sign el9 rel rel: %v", r.err)
	}

	// A key in use cannot be deleted; once free it can.
	if r := s.run(t, "key", "delete", "rel"); !isStatus(r.err, http.StatusConflict) || !strings.Contains(r.err.Error(), "el9") {
		t.Errorf("key delete of a key in use: %v", r.err)
	}
	r = s.run(t, "key", "list").must(t, "key list (table)")
	if !regexp.MustCompile(`(?m)^NAME +FINGERPRINT +ALGORITHM +CREATED +REPOS$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^default \(default\) +`+seedFpr+` +rsa3072 +\d{4}-\d\d-\d\d +dflt,two$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^rel +`+relFpr+` +rsa3072 +\d{4}-\d\d-\d\d +el9,two$`).MatchString(r.stdout) {
		t.Errorf("key list table:\n%s", r.stdout)
	}
	r = s.run(t, "repo", "sign", "el9", "--unsigned").must(t, "repo sign --unsigned")
	if !regexp.MustCompile(`^el9 is now unsigned \(generation \d+\)\n$`).MatchString(r.stdout) {
		t.Errorf("repo sign --unsigned printed %q", r.stdout)
	}
	s.run(t, "repo", "sign", "two", "default").must(t, "repo sign two default")
	r = s.run(t, "key", "delete", "rel").must(t, "key delete")
	if r.stdout != "deleted key \"rel\"\n" {
		t.Errorf("key delete printed %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(s.data, "keys", "rel.asc")); !os.IsNotExist(err) {
		t.Errorf("rel.asc after key delete: %v", err)
	}
	if r := s.run(t, "key", "delete", "default"); !isStatus(r.err, http.StatusConflict) {
		t.Errorf("key delete default: %v", r.err)
	}
	keys = decodeOut[[]client.Key](t, s.run(t, "key", "list", "-o", "json").must(t, "key list"))
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	if want := []string{"default", "fast", "fileover", "fromenv", "fromfile"}; !slices.Equal(names, want) {
		t.Errorf("keys at the end: %v, want %v", names, want)
	}

	// Key administration needs an admin token.
	writer := strings.TrimSpace(s.run(t, "token", "create", "ci", "--scope", "write").must(t, "token create").stdout)
	for _, args := range [][]string{
		{"key", "list"},
		{"key", "generate", "sneaky"},
		{"key", "import", "sneaky", encFile, "--passphrase-file", passFile},
		{"key", "delete", "fromenv"},
	} {
		if r := runCLI(t, append([]string{"--server", s.url, "--token", writer}, args...)...); !isStatus(r.err, http.StatusForbidden) {
			t.Errorf("%v with a write token: %v", args, r.err)
		}
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestConfigKeys(t *testing.T) {
	file := writeConfig(t, `
data = "/srv/packyard"
key_dir = "/etc/packyard/keys"
default_key = "main"

[keys.release]
path = "/etc/packyard/release.asc"
passphrase_file = "/run/secrets/release-pass"

[keys."legacy.2019"]
path = "/etc/packyard/legacy.asc"
`)
	c := config.Default()
	if c.DefaultKey != "default" {
		t.Errorf("default default_key = %q, want default", c.DefaultKey)
	}
	if err := config.LoadFile(&c, file); err != nil {
		t.Fatal(err)
	}
	want := map[string]config.KeyRef{
		"release":     {Path: "/etc/packyard/release.asc", PassphraseFile: "/run/secrets/release-pass"},
		"legacy.2019": {Path: "/etc/packyard/legacy.asc"},
	}
	if len(c.Keys) != len(want) {
		t.Errorf("keys = %+v, want %+v", c.Keys, want)
	}
	for name, ref := range want {
		if c.Keys[name] != ref {
			t.Errorf("keys.%s = %+v, want %+v", name, c.Keys[name], ref)
		}
	}
	if c.KeyDir != "/etc/packyard/keys" || c.DefaultKey != "main" {
		t.Errorf("key_dir = %q, default_key = %q", c.KeyDir, c.DefaultKey)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	env := map[string]string{"PACKYARD_KEY_DIR": "/var/lib/keys", "PACKYARD_DEFAULT_KEY": "other"}
	if err := config.LoadEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.KeyDir != "/var/lib/keys" || c.DefaultKey != "other" {
		t.Errorf("after the environment: key_dir = %q, default_key = %q", c.KeyDir, c.DefaultKey)
	}

	// A misspelt field of a key is an error naming it.
	c = config.Default()
	err := config.LoadFile(&c, writeConfig(t, "[keys.release]\npath = \"/k.asc\"\npassphrase = \"inline\"\n"))
	if err == nil || !strings.Contains(err.Error(), "keys.release.passphrase") {
		t.Errorf("unknown key field: %v, want an error naming keys.release.passphrase", err)
	}
	// A key without a path does not validate.
	c = config.Default()
	if err := config.LoadFile(&c, writeConfig(t, "[keys.release]\npassphrase_file = \"/p\"\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "keys.release.path") {
		t.Errorf("Validate of a key without a path: %v", err)
	}
}

func TestOpenKeyring(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.Data = t.TempDir()

	// First start: the default key is generated, once.
	kr, err := openKeyring(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	info, err := kr.Describe("default")
	if err != nil {
		t.Fatalf("no default key after the first start: %v", err)
	}
	if info.Algorithm != "rsa3072" || info.External || !slices.Equal(info.UserIDs, []string{"packyard signing key default"}) {
		t.Errorf("generated default key: %+v", info)
	}
	keyDir := filepath.Join(cfg.Data, "keys")
	if info.Path != filepath.Join(keyDir, "default.asc") {
		t.Errorf("default key stored at %s, want in %s", info.Path, keyDir)
	}
	if fi, err := os.Stat(keyDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key directory: %v %v", fi, err)
	}
	if fi, err := os.Stat(info.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("default key file: %v %v", fi, err)
	}
	again, err := openKeyring(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if list := again.List(); len(list) != 1 || list[0].Fingerprint != info.Fingerprint {
		t.Errorf("second start: keys %+v, want only the default key %s", list, info.Fingerprint)
	}
	if entries, _ := os.ReadDir(keyDir); len(entries) != 1 {
		t.Errorf("key directory after two starts holds %d files, want 1", len(entries))
	}

	// External keys, one encrypted with its passphrase in a file; key_dir
	// moves the stored keys; a default key that is external is not
	// generated.
	seedFpr := seedFingerprint(t)
	dir := t.TempDir()
	pass := "from the secrets file"
	encPath := writeFile(t, dir, "release.asc", encryptedSeedKey(t, pass))
	passPath := writeFile(t, dir, "release.pass", []byte(pass+"\r\n"))
	cfg2 := config.Default()
	cfg2.Data = t.TempDir()
	cfg2.KeyDir = filepath.Join(dir, "stored")
	cfg2.DefaultKey = "release"
	cfg2.Keys = map[string]config.KeyRef{"release": {Path: encPath, PassphraseFile: passPath}}
	kr, err = openKeyring(cfg2, log)
	if err != nil {
		t.Fatal(err)
	}
	info, err = kr.Describe("release")
	if err != nil {
		t.Fatal(err)
	}
	if !info.External || info.Path != encPath || info.Fingerprint != seedFpr {
		t.Errorf("external key: %+v, want %s from %s", info, seedFpr, encPath)
	}
	if n := len(kr.List()); n != 1 {
		t.Errorf("%d keys, want only the external one (nothing generated)", n)
	}
	if entries, err := os.ReadDir(cfg2.KeyDir); err != nil || len(entries) != 0 {
		t.Errorf("key_dir %s: %v entries, err %v; want it created and empty", cfg2.KeyDir, entries, err)
	}
	if _, err := os.Stat(filepath.Join(cfg2.Data, "keys")); !os.IsNotExist(err) {
		t.Errorf("<data>/keys was created although key_dir is set: %v", err)
	}

	// No default key: nothing is generated.
	cfg3 := config.Default()
	cfg3.Data = t.TempDir()
	cfg3.DefaultKey = ""
	if kr, err := openKeyring(cfg3, log); err != nil || len(kr.List()) != 0 {
		t.Errorf("default_key \"\": %v, %d keys", err, len(kr.List()))
	}

	// Configurations that must not start.
	for _, tc := range []struct {
		name string
		ref  config.KeyRef
		msg  string
	}{
		{"wrong passphrase", config.KeyRef{Path: encPath, PassphraseFile: writeFile(t, dir, "bad.pass", []byte("nope\n"))}, "wrong passphrase"},
		{"no passphrase", config.KeyRef{Path: encPath}, "passphrase required"},
		{"missing passphrase file", config.KeyRef{Path: encPath, PassphraseFile: filepath.Join(dir, "missing.pass")}, "missing.pass"},
		{"missing key file", config.KeyRef{Path: filepath.Join(dir, "missing.asc")}, "missing.asc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.Data = t.TempDir()
			c.DefaultKey = ""
			c.Keys = map[string]config.KeyRef{"release": tc.ref}
			_, err := openKeyring(c, log)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), `"release"`) {
				t.Errorf("openKeyring: %v, want an error naming key \"release\" and mentioning %q", err, tc.msg)
			}
		})
	}
}
