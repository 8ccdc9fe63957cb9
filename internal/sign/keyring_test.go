package sign

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// seedKey returns testdata/seed-key.asc, a fixed RSA-3072 key, as its
// armored text and parsed.
func seedKey(t *testing.T) ([]byte, *Key) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seed-key.asc"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivate(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, k
}

// fileMode returns the permission bits of p.
func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// fingerprints maps the names of kr's keys to their fingerprints.
func fingerprints(kr *Keyring) map[string]string {
	out := map[string]string{}
	for _, info := range kr.List() {
		out[info.Name] = info.Fingerprint
	}
	return out
}

func TestKeyringImportPersists(t *testing.T) {
	seedArmored, seed := seedKey(t)
	other, _ := keys(t)
	otherClear, err := other.ArmoredPrivate()
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("s3cret passphrase")
	otherEnc := encryptedExport(t, otherClear, pass)
	pub, err := seed.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "keys") // created by OpenKeyring
	kr, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, dir); m != 0o700 {
		t.Errorf("key directory mode = %o, want 700", m)
	}
	if n := len(kr.List()); n != 0 {
		t.Fatalf("new keyring lists %d keys", n)
	}

	refused := []struct {
		name, key string
		armored   []byte
		pass      []byte
		want      error
	}{
		{"encrypted, no passphrase", "enc", otherEnc, nil, ErrPassphraseRequired},
		{"encrypted, wrong passphrase", "enc", otherEnc, []byte("not it"), ErrWrongPassphrase},
		{"public key", "pub", pub, nil, ErrNoPrivateKey},
		{"garbage", "junk", []byte("-----BEGIN nonsense"), nil, ErrNotArmored},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := kr.Import(tc.key, tc.armored, tc.pass); !errors.Is(err, tc.want) {
				t.Fatalf("Import error = %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.key+".asc")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused key left a file: %v", err)
			}
			if _, err := kr.Get(tc.key); !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("refused key is in the keyring: %v", err)
			}
		})
	}

	k, err := kr.Import("seed", seedArmored, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint() != seed.Fingerprint() {
		t.Errorf("imported fingerprint %s, want %s", k.Fingerprint(), seed.Fingerprint())
	}
	k, err = kr.Import("enc", otherEnc, pass)
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint() != other.Fingerprint() {
		t.Errorf("imported fingerprint %s, want %s", k.Fingerprint(), other.Fingerprint())
	}
	want := map[string]string{"seed": seed.Fingerprint(), "enc": other.Fingerprint()}
	if got := fingerprints(kr); !mapsEqual(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
	for name := range want {
		p := filepath.Join(dir, name+".asc")
		if m := fileMode(t, p); m != 0o600 {
			t.Errorf("%s mode = %o, want 600", p, m)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Stored in the clear: the server signs without a passphrase.
		if _, err := ParsePrivate(b, nil); err != nil {
			t.Errorf("%s does not parse without a passphrase: %v", p, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("key directory holds %d entries, want 2 (no temporary files)", len(entries))
	}

	again, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got := fingerprints(again); !mapsEqual(got, want) {
		t.Errorf("after reopening, keys = %v, want %v", got, want)
	}
	info, err := again.Describe("enc")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "enc" || info.External || info.Path != filepath.Join(dir, "enc.asc") || info.Algorithm != "rsa3072" ||
		!slices.Equal(info.UserIDs, []string{"Packyard Old <repo@example.com>"}) || !info.Created.Equal(keyTime) {
		t.Errorf("Describe(enc) = %+v", info)
	}
	// The reopened key signs, and the signature is the imported key's.
	at := keyTime.Add(time.Minute)
	s, err := again.Signer([]string{"enc"})
	if err != nil {
		t.Fatal(err)
	}
	s.Clock = func() time.Time { return at }
	sig, err := s.DetachBinary(metadata)
	if err != nil {
		t.Fatal(err)
	}
	checkSigs(t, sigPackets(t, sig), []*Key{other}, at)
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{other.entity}, bytes.NewReader(metadata), bytes.NewReader(sig), verifyConfig(at)); err != nil {
		t.Errorf("signature of the reopened key: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestKeyringGenerate(t *testing.T) {
	dir := t.TempDir()
	kr, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, algo := range []string{"rsa1024", "rsa2048", "dsa", "ed448"} {
		if _, err := kr.Generate("small", "", "", algo); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("Generate(%s) error = %v, want ErrAlgorithm", algo, err)
		}
	}
	if _, err := kr.Generate("bad/name", "", "", ""); !errors.Is(err, ErrKeyName) {
		t.Errorf("Generate(bad/name) error = %v, want ErrKeyName", err)
	}
	before := time.Now().Add(-time.Second)
	k, err := kr.Generate("release", "", "ops@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := kr.Describe("release")
	if err != nil {
		t.Fatal(err)
	}
	// The user ID's name is the key name when none is given.
	if info.Fingerprint != k.Fingerprint() || info.Algorithm != "rsa3072" ||
		!slices.Equal(info.UserIDs, []string{"release <ops@example.com>"}) || info.Created.Before(before.Truncate(time.Second)) {
		t.Errorf("Describe(release) = %+v", info)
	}
	p := filepath.Join(dir, "release.asc")
	if m := fileMode(t, p); m != 0o600 {
		t.Errorf("%s mode = %o, want 600", p, m)
	}
	// A second key of that name is refused before anything is generated.
	start := time.Now()
	if _, err := kr.Generate("release", "x", "", ""); !errors.Is(err, ErrKeyExists) {
		t.Errorf("Generate of an existing name: %v, want ErrKeyExists", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("refusing an existing name took %s: a key was generated first", d)
	}
	again, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprints(again); got["release"] != k.Fingerprint() || len(got) != 1 {
		t.Errorf("after reopening, keys = %v, want release=%s", got, k.Fingerprint())
	}
}

func TestKeyringNames(t *testing.T) {
	seedArmored, _ := seedKey(t)
	kr, err := OpenKeyring(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"default", true},
		{"Release-2025.v2_a", true},
		{"0", true},
		{strings.Repeat("k", 63), true},
		{strings.Repeat("k", 64), false},
		{"", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"a/b", false},
		{"../up", false},
		{"a b", false},
		{"a\nb", false},
		{"ключ", false},
	}
	for _, tc := range tests {
		_, err := kr.Import(tc.name, seedArmored, nil)
		switch {
		case tc.ok && err != nil:
			t.Errorf("Import(%q): %v", tc.name, err)
		case !tc.ok && !errors.Is(err, ErrKeyName):
			t.Errorf("Import(%q) error = %v, want ErrKeyName", tc.name, err)
		}
	}
	entries, err := os.ReadDir(kr.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	wantFiles := []string{"0.asc", "Release-2025.v2_a.asc", "default.asc", strings.Repeat("k", 63) + ".asc"}
	if !slices.Equal(files, wantFiles) {
		t.Errorf("key directory holds %v, want %v", files, wantFiles)
	}
}

func TestKeyringDuplicateName(t *testing.T) {
	seedArmored, seed := seedKey(t)
	other, _ := keys(t)
	otherArmored, err := other.ArmoredPrivate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kr, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Import("k", seedArmored, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Import("k", otherArmored, nil); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second import under k: %v, want ErrKeyExists", err)
	}
	if got := fingerprints(kr)["k"]; got != seed.Fingerprint() {
		t.Errorf("k is %s after a refused import, want %s", got, seed.Fingerprint())
	}
	b, err := os.ReadFile(filepath.Join(dir, "k.asc"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParsePrivate(b, nil); err != nil || k.Fingerprint() != seed.Fingerprint() {
		t.Errorf("k.asc was replaced by a refused import: %v", err)
	}

	// A file that appeared after the keyring was opened (another server
	// process sharing the directory) is never replaced.
	late := filepath.Join(dir, "late.asc")
	if err := os.WriteFile(late, otherArmored, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Import("late", seedArmored, nil); !errors.Is(err, ErrKeyExists) {
		t.Errorf("import over a file not yet loaded: %v, want ErrKeyExists", err)
	}
	if b, err := os.ReadFile(late); err != nil || !bytes.Equal(b, otherArmored) {
		t.Errorf("late.asc was replaced: %v", err)
	}
	// The other server's key is the one this keyring now finds.
	if k, err := kr.Get("late"); err != nil || k.Fingerprint() == seed.Fingerprint() {
		t.Errorf("late after the refused import: %v (seed's key: %v)", err, err == nil && k.Fingerprint() == seed.Fingerprint())
	}

	// Concurrent imports under one name: exactly one wins, and its key is
	// the one stored.
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	got := make([]*Key, n)
	for i := range n {
		wg.Go(func() {
			armored := seedArmored
			if i%2 == 1 {
				armored = otherArmored
			}
			got[i], errs[i] = kr.Import("race", armored, nil)
		})
	}
	wg.Wait()
	var winner *Key
	for i, err := range errs {
		switch {
		case err == nil && winner != nil:
			t.Errorf("two concurrent imports under one name succeeded")
		case err == nil:
			winner = got[i]
		case !errors.Is(err, ErrKeyExists):
			t.Errorf("concurrent import: %v, want ErrKeyExists", err)
		}
	}
	if winner == nil {
		t.Fatal("no concurrent import succeeded")
	}
	b, err = os.ReadFile(filepath.Join(dir, "race.asc"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParsePrivate(b, nil); err != nil || k.Fingerprint() != winner.Fingerprint() {
		t.Errorf("race.asc does not hold the winning key %s: %v", winner.Fingerprint(), err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

func TestKeyringDelete(t *testing.T) {
	seedArmored, _ := seedKey(t)
	dir := t.TempDir()
	kr, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"keep", "drop"} {
		if _, err := kr.Import(name, seedArmored, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := kr.Delete("drop"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "drop.asc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("drop.asc after Delete: %v", err)
	}
	if _, err := kr.Get("drop"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Get after Delete: %v, want ErrKeyNotFound", err)
	}
	if _, err := kr.Describe("drop"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Describe after Delete: %v, want ErrKeyNotFound", err)
	}
	if err := kr.Delete("drop"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("second Delete: %v, want ErrKeyNotFound", err)
	}
	if _, err := kr.Signer([]string{"keep", "drop"}); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Signer naming a deleted key: %v, want ErrKeyNotFound", err)
	}
	again, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprints(again); len(got) != 1 || got["keep"] == "" {
		t.Errorf("after reopening, keys = %v, want only keep", got)
	}
	// The name is free again.
	if _, err := kr.Import("drop", seedArmored, nil); err != nil {
		t.Errorf("import under a deleted key's name: %v", err)
	}
}

func TestKeyringExternal(t *testing.T) {
	seedArmored, seed := seedKey(t)
	other, _ := keys(t)
	otherClear, err := other.ArmoredPrivate()
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("from a file")
	extDir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(extDir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clearPath := write("clear.asc", seedArmored)
	encPath := write("enc.asc", encryptedExport(t, otherClear, pass))
	junkPath := write("junk.asc", []byte("not a key"))

	dir := t.TempDir()
	ext := map[string]ExternalKey{
		"ext-clear": {Path: clearPath},
		"ext-enc":   {Path: encPath, Passphrase: pass},
	}
	kr, err := OpenKeyring(dir, ext)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ext-clear": seed.Fingerprint(), "ext-enc": other.Fingerprint()}
	if got := fingerprints(kr); !mapsEqual(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
	for _, info := range kr.List() {
		if !info.External || info.Path != ext[info.Name].Path {
			t.Errorf("%s: External=%v Path=%q, want an external key at %s", info.Name, info.External, info.Path, ext[info.Name].Path)
		}
	}
	if err := kr.Delete("ext-enc"); !errors.Is(err, ErrExternalKey) {
		t.Errorf("Delete of an external key: %v, want ErrExternalKey", err)
	}
	if _, err := os.Stat(encPath); err != nil {
		t.Errorf("external key file after a refused Delete: %v", err)
	}
	if _, err := kr.Get("ext-enc"); err != nil {
		t.Errorf("external key gone after a refused Delete: %v", err)
	}
	if _, err := kr.Import("ext-clear", seedArmored, nil); !errors.Is(err, ErrKeyExists) {
		t.Errorf("Import under an external key's name: %v, want ErrKeyExists", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("external keys were written to the key directory: %v", entries)
	}
	// The external key signs like any other.
	at := keyTime.Add(time.Minute)
	s, err := kr.Signer([]string{"ext-enc"})
	if err != nil {
		t.Fatal(err)
	}
	s.Clock = func() time.Time { return at }
	sig, err := s.DetachBinary(metadata)
	if err != nil {
		t.Fatal(err)
	}
	checkSigs(t, sigPackets(t, sig), []*Key{other}, at)

	if _, err := kr.Import("local", seedArmored, nil); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		ext  map[string]ExternalKey
		want error  // nil: any error
		msg  string // the error must contain it
	}{
		{"wrong passphrase", map[string]ExternalKey{"release-ext": {Path: encPath, Passphrase: []byte("nope")}}, ErrWrongPassphrase, encPath},
		{"no passphrase", map[string]ExternalKey{"release-ext": {Path: encPath}}, ErrPassphraseRequired, encPath},
		{"not a key", map[string]ExternalKey{"release-ext": {Path: junkPath}}, ErrNotArmored, junkPath},
		{"missing file", map[string]ExternalKey{"release-ext": {Path: filepath.Join(extDir, "missing.asc")}}, os.ErrNotExist, "missing.asc"},
		{"bad name", map[string]ExternalKey{"bad/name": {Path: clearPath}}, ErrKeyName, "bad/name"},
		{"name also in the directory", map[string]ExternalKey{"local": {Path: clearPath}}, ErrKeyExists, "local"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenKeyring(dir, tc.ext)
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenKeyring error = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			for name := range tc.ext {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name key %q", err, name)
				}
			}
		})
	}
}

func TestOpenKeyringCleansTemporaryFiles(t *testing.T) {
	seedArmored, seed := seedKey(t)
	dir := t.TempDir()
	files := map[string][]byte{
		"default.asc":                   seedArmored,
		".default.123456.tmp":           []byte("half a key"),
		".other.99.tmp":                 nil,
		"notes.txt":                     []byte("not a key and not ours to delete"),
		".hidden.asc":                   []byte("not a valid key name: ignored"),
		"default.asc.12.tmp":            []byte("not one of ours: no leading dot"),
		filepath.Join("sub", "ignored"): []byte("in a subdirectory"),
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Minute)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// A temporary file written a moment ago may be another server's write
	// in progress (a shared key directory): it stays.
	fresh := filepath.Join(dir, ".next.7.tmp")
	if err := os.WriteFile(fresh, []byte("being written"), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprints(kr); len(got) != 1 || got["default"] != seed.Fingerprint() {
		t.Errorf("keys = %v, want default=%s", got, seed.Fingerprint())
	}
	for name := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		gone := errors.Is(err, os.ErrNotExist)
		if wantGone := strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp"); gone != wantGone {
			t.Errorf("%s: removed = %v, want %v (stat: %v)", name, gone, wantGone, err)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file was removed: %v", err)
	}
}

func TestOpenKeyringRefusesBrokenKey(t *testing.T) {
	seedArmored, seed := seedKey(t)
	pubArmored, err := seed.ArmoredPublic()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"garbage":   []byte("this is not a key\n"),
		"truncated": seedArmored[:len(seedArmored)/2],
		"public":    pubArmored,
		"empty":     {},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "good.asc"), seedArmored, 0o600); err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(dir, "broken.asc")
			if err := os.WriteFile(bad, content, 0o600); err != nil {
				t.Fatal(err)
			}
			kr, err := OpenKeyring(dir, nil)
			if err == nil {
				t.Fatalf("OpenKeyring accepted a broken key file; keys: %v", fingerprints(kr))
			}
			if !strings.Contains(err.Error(), bad) {
				t.Errorf("error %q does not name the file %s", err, bad)
			}
		})
	}
}

func TestKeyringSignerTwoKeys(t *testing.T) {
	seedArmored, seed := seedKey(t)
	other, _ := keys(t)
	otherArmored, err := other.ArmoredPrivate()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := OpenKeyring(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Import("old", seedArmored, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Import("new", otherArmored, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Import("old-again", seedArmored, nil); err != nil {
		t.Fatal(err)
	}
	at := keyTime.Add(2 * time.Minute)
	for _, order := range [][]string{{"old", "new"}, {"new", "old"}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			want := map[string]*Key{"old": seed, "new": other}
			wantKeys := []*Key{want[order[0]], want[order[1]]}
			s, err := kr.Signer(order)
			if err != nil {
				t.Fatal(err)
			}
			s.Clock = func() time.Time { return at }
			armored, err := s.DetachArmored(metadata)
			if err != nil {
				t.Fatal(err)
			}
			bin, err := s.DetachBinary(metadata)
			if err != nil {
				t.Fatal(err)
			}
			checkSigs(t, sigPackets(t, bin), wantKeys, at)
			for _, k := range wantKeys {
				if _, err := openpgp.CheckArmoredDetachedSignature(openpgp.EntityList{k.entity}, bytes.NewReader(metadata), bytes.NewReader(armored), verifyConfig(at)); err != nil {
					t.Errorf("key %s alone does not verify: %v", k.Fingerprint(), err)
				}
			}

			pubs, err := kr.ArmoredPublicKeys(order)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(pubs, []byte("PRIVATE")) {
				t.Fatal("ArmoredPublicKeys holds private key material")
			}
			ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pubs))
			if err != nil {
				t.Fatal(err)
			}
			if len(ring) != 2 || fingerprint(ring[0]) != wantKeys[0].Fingerprint() || fingerprint(ring[1]) != wantKeys[1].Fingerprint() {
				t.Errorf("ArmoredPublicKeys(%v) holds %d keys, not %s then %s", order, len(ring), wantKeys[0].Fingerprint(), wantKeys[1].Fingerprint())
			}
			for i, e := range ring {
				if e.PrivateKey != nil {
					t.Errorf("public key %d carries a private key", i)
				}
			}
		})
	}
	for _, tc := range []struct {
		names []string
		want  error
	}{
		{[]string{"old", "missing"}, ErrKeyNotFound},
		{[]string{"old", "old-again"}, ErrDuplicateKey}, // same key under two names
		{nil, ErrNoKeys},
	} {
		if _, err := kr.Signer(tc.names); !errors.Is(err, tc.want) {
			t.Errorf("Signer(%v) error = %v, want %v", tc.names, err, tc.want)
		}
	}
	if _, err := kr.ArmoredPublicKeys([]string{"missing"}); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("ArmoredPublicKeys(missing) error = %v, want ErrKeyNotFound", err)
	}
}

func TestKeyringListSorted(t *testing.T) {
	seedArmored, _ := seedKey(t)
	kr, err := OpenKeyring(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"zeta", "alpha", "Mid", "beta"} {
		if _, err := kr.Import(n, seedArmored, nil); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, info := range kr.List() {
		names = append(names, info.Name)
	}
	if want := []string{"Mid", "alpha", "beta", "zeta"}; !slices.Equal(names, want) {
		t.Errorf("List order = %v, want %v", names, want)
	}
}
