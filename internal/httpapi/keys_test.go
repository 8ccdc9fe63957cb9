package httpapi_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// keyInfo is the API form of a signing key, as a client reads it.
type keyInfo struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	Algorithm   string    `json:"algorithm"`
	UserIDs     []string  `json:"user_ids"`
	Created     time.Time `json:"created"`
	External    bool      `json:"external"`
	Default     bool      `json:"default"`
	Repos       []string  `json:"repos"`
}

// signedRepo is the API form of a repository with its signing keys.
type signedRepo struct {
	Name              string `json:"name"`
	CurrentGeneration int64  `json:"current_generation"`
	Signing           []struct {
		Name        string `json:"name"`
		Fingerprint string `json:"fingerprint"`
	} `json:"signing"`
}

func (r signedRepo) signers() []string {
	out := []string{}
	for _, k := range r.Signing {
		out = append(out, k.Name+"="+k.Fingerprint)
	}
	return out
}

// keyCall is e.call for the key API: no answer may ever hold private key
// material, whatever the request.
func (e *env) keyCall(method, path, token string, body []byte) response {
	e.t.Helper()
	r := e.call(method, path, token, body)
	if bytes.Contains(r.body, []byte("PRIVATE KEY")) {
		e.t.Fatalf("%s %s answered with private key material: %v", method, path, r)
	}
	return r
}

// seedArmored returns the fixed test key (the env's default key).
func seedArmored(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "sign", "testdata", "seed-key.asc"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readEntities parses one armored key block into its entities.
func readEntities(t *testing.T, armored []byte) openpgp.EntityList {
	t.Helper()
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		t.Fatalf("parse armored keys: %v", err)
	}
	return ring
}

// encryptKey returns the armored private key re-exported encrypted with
// pass, as gpg --export-secret-keys --armor writes a protected key.
func encryptKey(t *testing.T, armored, pass []byte) []byte {
	t.Helper()
	ring := readEntities(t, armored)
	if err := ring[0].EncryptPrivateKeys(pass, nil); err != nil {
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

// armoredPublic returns the public part of an armored private key.
func armoredPublic(t *testing.T, armored []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := readEntities(t, armored)[0].Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fprOf(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// publicKeys parses public keys (armored or binary) and returns their
// fingerprints in order, failing if any carries a private key.
func publicKeys(t *testing.T, b []byte) (openpgp.EntityList, []string) {
	t.Helper()
	var ring openpgp.EntityList
	var err error
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		ring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("parse public keys: %v", err)
	}
	var fprs []string
	for _, e := range ring {
		if e.PrivateKey != nil {
			t.Fatalf("public key %s carries its private key", fprOf(e))
		}
		fprs = append(fprs, fprOf(e))
	}
	return ring, fprs
}

func TestKeyAPI(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	seed := seedArmored(t)
	seedFpr := fprOf(readEntities(t, seed)[0])

	list := func() []keyInfo {
		t.Helper()
		r := e.keyCall(http.MethodGet, "/api/v1/keys", e.admin, nil).want(t, http.StatusOK, "list keys")
		return decodeJSON[[]keyInfo](t, r)
	}
	names := func() []string {
		t.Helper()
		var out []string
		for _, k := range list() {
			out = append(out, k.Name)
		}
		return out
	}
	keys := list()
	if len(keys) != 1 || keys[0].Name != "default" || keys[0].Fingerprint != seedFpr || !keys[0].Default ||
		keys[0].Algorithm != "rsa3072" || keys[0].External || keys[0].Repos == nil || len(keys[0].Repos) != 0 {
		t.Fatalf("keys at start: %+v", keys)
	}

	// A new repository is signed by the default key, and the key lists it.
	e.createRepo("el9")
	rp := decodeJSON[signedRepo](t, e.get("/api/v1/repos/el9").want(t, http.StatusOK, "show repo"))
	if got := rp.signers(); !slices.Equal(got, []string{"default=" + seedFpr}) {
		t.Errorf("el9 signing = %v", got)
	}
	if keys := list(); !slices.Equal(keys[0].Repos, []string{"el9"}) {
		t.Errorf("default key repos = %v, want [el9]", keys[0].Repos)
	}

	// Generate.
	r := e.keyCall(http.MethodPost, "/api/v1/keys", e.admin, []byte(`{"name":"new","uid":"Packyard New","email":"new@example.com"}`)).
		want(t, http.StatusCreated, "generate key")
	gen := decodeJSON[keyInfo](t, r)
	if gen.Name != "new" || len(gen.Fingerprint) != 40 || gen.Fingerprint == seedFpr || gen.Default ||
		!slices.Equal(gen.UserIDs, []string{"Packyard New <new@example.com>"}) || gen.Algorithm != "rsa3072" {
		t.Errorf("generated key: %+v", gen)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/keys/new" {
		t.Errorf("Location = %q", loc)
	}
	keyFile := filepath.Join(e.data, "keys", "new.asc")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("generated key file: %v %v", fi, err)
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"name":"new"}`, http.StatusConflict, "exists"},
		{`{"name":"../etc"}`, http.StatusBadRequest, "invalid_key"},
		{`{"name":""}`, http.StatusBadRequest, "invalid_key"},
		{`{"name":"small","bits":1024}`, http.StatusBadRequest, "invalid_key"},
		{`{"name":`, http.StatusBadRequest, ""},
	} {
		r := e.keyCall(http.MethodPost, "/api/v1/keys", e.admin, []byte(tc.body)).want(t, tc.status, "generate "+tc.body)
		if _, code := r.apiErr(t); tc.code != "" && code != tc.code {
			t.Errorf("generate %s: code %q, want %q", tc.body, code, tc.code)
		}
	}

	// Import: clear and encrypted, and every way of getting it wrong.
	pass := "import passphrase"
	enc := encryptKey(t, seed, []byte(pass))
	importBody := func(armored []byte, passphrase string) []byte {
		b, _ := json.Marshal(map[string]string{"armored": string(armored), "passphrase": passphrase})
		return b
	}
	for _, tc := range []struct {
		name, what string
		body       []byte
		status     int
		msg        string
	}{
		{"enc", "no passphrase", importBody(enc, ""), http.StatusBadRequest, "passphrase required"},
		{"enc", "wrong passphrase", importBody(enc, "wrong"), http.StatusBadRequest, "wrong passphrase"},
		{"pub", "public key", importBody(armoredPublic(t, seed), ""), http.StatusBadRequest, "export-secret-keys"},
		{"junk", "garbage", importBody([]byte("not a key"), ""), http.StatusBadRequest, "armored"},
		{"bad%2Fname", "bad name", importBody(seed, ""), http.StatusBadRequest, "invalid key name"},
		{"default", "existing name", importBody(seed, ""), http.StatusConflict, "already exists"},
		{"x", "not JSON", []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----"), http.StatusBadRequest, "JSON"},
	} {
		r := e.keyCall(http.MethodPut, "/api/v1/keys/"+tc.name, e.admin, tc.body).want(t, tc.status, "import: "+tc.what)
		if msg, _ := r.apiErr(t); !strings.Contains(msg, tc.msg) {
			t.Errorf("import (%s): message %q does not mention %q", tc.what, msg, tc.msg)
		}
	}
	if got := names(); !slices.Equal(got, []string{"default", "new"}) {
		t.Fatalf("refused imports changed the keys: %v", got)
	}
	r = e.keyCall(http.MethodPut, "/api/v1/keys/enc", e.admin, importBody(enc, pass)).want(t, http.StatusCreated, "import encrypted")
	if k := decodeJSON[keyInfo](t, r); k.Name != "enc" || k.Fingerprint != seedFpr {
		t.Errorf("imported encrypted key: %+v", k)
	}
	r = e.keyCall(http.MethodPut, "/api/v1/keys/clear", e.admin, importBody(seed, "")).want(t, http.StatusCreated, "import clear")
	if k := decodeJSON[keyInfo](t, r); k.Name != "clear" || k.Fingerprint != seedFpr || r.header.Get("Location") != "/api/v1/keys/clear" {
		t.Errorf("imported key: %+v (Location %q)", k, r.header.Get("Location"))
	}
	if got := names(); !slices.Equal(got, []string{"clear", "default", "enc", "new"}) {
		t.Errorf("keys after imports: %v", got)
	}

	// Show and public parts are public.
	r = e.keyCall(http.MethodGet, "/api/v1/keys/new", "", nil).want(t, http.StatusOK, "show key")
	if k := decodeJSON[keyInfo](t, r); k.Fingerprint != gen.Fingerprint || k.Name != "new" {
		t.Errorf("show new: %+v", k)
	}
	e.keyCall(http.MethodGet, "/api/v1/keys/missing", "", nil).want(t, http.StatusNotFound, "show missing key")
	for _, tc := range []struct {
		query   string
		armored bool
	}{{"", true}, {"?format=asc", true}, {"?format=gpg", false}} {
		r := e.keyCall(http.MethodGet, "/api/v1/keys/new/public"+tc.query, "", nil).want(t, http.StatusOK, "public key"+tc.query)
		if ct := r.header.Get("Content-Type"); ct != "application/pgp-keys" {
			t.Errorf("public key%s: Content-Type %q", tc.query, ct)
		}
		if got := bytes.HasPrefix(r.body, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")); got != tc.armored {
			t.Errorf("public key%s starts %q", tc.query, r.body[:min(len(r.body), 40)])
		}
		if _, fprs := publicKeys(t, r.body); !slices.Equal(fprs, []string{gen.Fingerprint}) {
			t.Errorf("public key%s holds %v, want %s", tc.query, fprs, gen.Fingerprint)
		}
	}
	e.keyCall(http.MethodGet, "/api/v1/keys/new/public?format=pem", "", nil).want(t, http.StatusBadRequest, "public key in an unknown format")
	e.keyCall(http.MethodGet, "/api/v1/keys/missing/public", "", nil).want(t, http.StatusNotFound, "public part of a missing key")

	// Listing, generating, importing and deleting need an admin token.
	writer := e.token("ci", "write")
	for _, tc := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodGet, "/api/v1/keys", nil},
		{http.MethodPost, "/api/v1/keys", []byte(`{"name":"sneaky"}`)},
		{http.MethodPut, "/api/v1/keys/sneaky", importBody(seed, "")},
		{http.MethodDelete, "/api/v1/keys/clear", nil},
	} {
		what := tc.method + " " + tc.path
		e.keyCall(tc.method, tc.path, writer, tc.body).want(t, http.StatusForbidden, what+" with a write token")
		e.keyCall(tc.method, tc.path, "", tc.body).want(t, http.StatusUnauthorized, what+" without a token")
		e.keyCall(tc.method, tc.path, "pky_not_a_token", tc.body).want(t, http.StatusUnauthorized, what+" with a bad token")
	}
	if got := names(); !slices.Equal(got, []string{"clear", "default", "enc", "new"}) {
		t.Errorf("keys after refused requests: %v", got)
	}

	// Delete: not the default key, not a key in use, not twice.
	r = e.keyCall(http.MethodDelete, "/api/v1/keys/default", e.admin, nil).want(t, http.StatusConflict, "delete the default key")
	if msg, code := r.apiErr(t); !strings.Contains(msg, `"default" is the server's default key`) || code != "in_use" {
		t.Errorf("delete default: %q (%s)", msg, code)
	}
	e.call(http.MethodPatch, "/api/v1/repos/el9", e.admin, []byte(`{"keys":["new"]}`)).want(t, http.StatusOK, "sign el9 with new")
	r = e.keyCall(http.MethodDelete, "/api/v1/keys/new", e.admin, nil).want(t, http.StatusConflict, "delete a key in use")
	if msg, code := r.apiErr(t); !strings.Contains(msg, "el9") || strings.Contains(msg, "name taken") || code != "in_use" {
		t.Errorf("delete a key in use: %q (%s), want code in_use and a message naming el9", msg, code)
	}
	e.keyCall(http.MethodDelete, "/api/v1/keys/clear", e.admin, nil).want(t, http.StatusNoContent, "delete clear")
	if _, err := os.Stat(filepath.Join(e.data, "keys", "clear.asc")); !os.IsNotExist(err) {
		t.Errorf("clear.asc after delete: %v", err)
	}
	e.keyCall(http.MethodGet, "/api/v1/keys/clear", "", nil).want(t, http.StatusNotFound, "show a deleted key")
	e.keyCall(http.MethodDelete, "/api/v1/keys/clear", e.admin, nil).want(t, http.StatusNotFound, "delete twice")
	if got := names(); !slices.Equal(got, []string{"default", "enc", "new"}) {
		t.Errorf("keys after delete: %v", got)
	}
	for _, k := range list() {
		if want := k.Name == "new"; want != slices.Equal(k.Repos, []string{"el9"}) {
			t.Errorf("key %s lists repos %v", k.Name, k.Repos)
		}
	}
}

func TestKeyAPIWithoutKeyring(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct{ method, path, token string }{
		{http.MethodGet, "/api/v1/keys", e.admin},
		{http.MethodGet, "/api/v1/keys/default", ""},
		{http.MethodGet, "/api/v1/keys/default/public", ""},
		{http.MethodDelete, "/api/v1/keys/default", e.admin},
	} {
		r := e.keyCall(tc.method, tc.path, tc.token, nil).want(t, http.StatusNotFound, tc.method+" "+tc.path+" without a keyring")
		if msg, _ := r.apiErr(t); !strings.Contains(msg, "keyring") {
			t.Errorf("%s %s: %q does not say there is no keyring", tc.method, tc.path, msg)
		}
	}
	e.createRepo("plain")
	rp := decodeJSON[signedRepo](t, e.get("/api/v1/repos/plain").want(t, http.StatusOK, "show repo"))
	if rp.Signing == nil || len(rp.Signing) != 0 {
		t.Errorf("signing of a repository without keys: %v", rp.Signing)
	}
	r := e.call(http.MethodPatch, "/api/v1/repos/plain", e.admin, []byte(`{"keys":["default"]}`)).want(t, http.StatusBadRequest, "sign without a keyring")
	if msg, _ := r.apiErr(t); !strings.Contains(msg, "keyring") {
		t.Errorf("sign without a keyring: %q", msg)
	}
}

// gpgvPath returns the real gpgv, skipping the test when it is missing
// unless PACKYARD_REQUIRE_REAL=1.
func gpgvPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("gpgv")
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("gpgv not found and PACKYARD_REQUIRE_REAL=1: %v", err)
		}
		t.Skipf("gpgv not found: %v", err)
	}
	return p
}

// signatures returns the signature packets of an armored detached
// signature.
func signatures(t *testing.T, asc []byte) []*packet.Signature {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(asc))
	if err != nil {
		t.Fatalf("decode signature armor: %v", err)
	}
	if block.Type != openpgp.SignatureType {
		t.Fatalf("armored block is %q, want %q", block.Type, openpgp.SignatureType)
	}
	var sigs []*packet.Signature
	rd := packet.NewReader(block.Body)
	for {
		p, err := rd.Next()
		if err == io.EOF {
			return sigs
		}
		if err != nil {
			t.Fatalf("parse signature packets: %v", err)
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			t.Fatalf("packet %T in a signature block", p)
		}
		sigs = append(sigs, sig)
	}
}

// checkRepomdSignature checks that the current repomd.xml.asc of repoName
// holds one good signature per key of want (fingerprints, in order), each
// verifiable alone against the repository's key.gpg, and returns the
// files it read.
func (e *env) checkRepomdSignature(t *testing.T, repoName string, want []string) (repomd, asc, keyGPG []byte) {
	t.Helper()
	repomd = e.get("/"+repoName+"/repodata/repomd.xml").want(t, http.StatusOK, "repomd.xml").body
	ascResp := e.get("/"+repoName+"/repodata/repomd.xml.asc").want(t, http.StatusOK, "repomd.xml.asc")
	asc = ascResp.body
	if ct := ascResp.header.Get("Content-Type"); ct != "application/pgp-signature" {
		t.Errorf("repomd.xml.asc Content-Type %q, want application/pgp-signature", ct)
	}
	keyGPG = e.get("/"+repoName+"/key.gpg").want(t, http.StatusOK, "key.gpg").body
	keyASC := e.get("/"+repoName+"/key.asc").want(t, http.StatusOK, "key.asc").body
	ring, fprs := publicKeys(t, keyGPG)
	if !slices.Equal(fprs, want) {
		t.Errorf("%s/key.gpg holds %v, want %v", repoName, fprs, want)
	}
	if _, fprs := publicKeys(t, keyASC); !slices.Equal(fprs, want) {
		t.Errorf("%s/key.asc holds %v, want %v", repoName, fprs, want)
	}
	sigs := signatures(t, asc)
	if len(sigs) != len(want) {
		t.Fatalf("%s/repodata/repomd.xml.asc holds %d signatures, want %d", repoName, len(sigs), len(want))
	}
	for i, e := range ring {
		if sigs[i].IssuerKeyId == nil || *sigs[i].IssuerKeyId != e.PrimaryKey.KeyId {
			t.Errorf("signature %d is not by %s", i, fprOf(e))
		}
		// A client that trusts only this key accepts the metadata.
		if _, err := openpgp.CheckArmoredDetachedSignature(openpgp.EntityList{e}, bytes.NewReader(repomd), bytes.NewReader(asc), nil); err != nil {
			t.Errorf("repomd.xml.asc does not verify with %s alone: %v", fprOf(e), err)
		}
	}
	tampered := append(bytes.Clone(repomd), ' ')
	if _, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(tampered), bytes.NewReader(asc), nil); err == nil {
		t.Error("repomd.xml.asc verifies a changed repomd.xml")
	}
	return repomd, asc, keyGPG
}

// TestRepoSigningRotation signs a repository with two keys through PATCH,
// then one: dnf's repomd.xml.asc must carry a good signature per key,
// checked by go-crypto and the real gpgv.
func TestRepoSigningRotation(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	seedFpr := fprOf(readEntities(t, seedArmored(t))[0])
	gen := decodeJSON[keyInfo](t, e.keyCall(http.MethodPost, "/api/v1/keys", e.admin, []byte(`{"name":"new"}`)).want(t, http.StatusCreated, "generate"))
	created := e.createRepo("el9")
	e.mustUpload("el9", "tool-1.0-1.x86_64.rpm", buildRPM(t, "tool", "1.0", "1", "payload"))
	e.checkRepomdSignature(t, "el9", []string{seedFpr})

	before := decodeJSON[signedRepo](t, e.get("/api/v1/repos/el9").want(t, http.StatusOK, "show"))
	r := e.call(http.MethodPatch, "/api/v1/repos/el9", e.admin, []byte(`{"keys":["default","new"]}`)).want(t, http.StatusOK, "sign with two keys")
	after := decodeJSON[signedRepo](t, r)
	if after.CurrentGeneration <= before.CurrentGeneration || before.CurrentGeneration <= created.CurrentGeneration {
		t.Errorf("generations: created %d, before PATCH %d, after %d", created.CurrentGeneration, before.CurrentGeneration, after.CurrentGeneration)
	}
	if got, want := after.signers(), []string{"default=" + seedFpr, "new=" + gen.Fingerprint}; !slices.Equal(got, want) {
		t.Errorf("signing after PATCH = %v, want %v", got, want)
	}
	repomd, asc, keyGPG := e.checkRepomdSignature(t, "el9", []string{seedFpr, gen.Fingerprint})
	if !strings.Contains(e.primaryXML("el9"), "<name>tool</name>") {
		t.Error("the package left the index with the new keys")
	}

	gpgv := gpgvPath(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyring, sig, data := write("key.gpg", keyGPG), write("repomd.xml.asc", asc), write("repomd.xml", repomd)
	tampered := write("repomd.tampered.xml", append(bytes.Clone(repomd), '\n'))
	run := func(args ...string) (string, error) {
		cmd := exec.Command(gpgv, append([]string{"--keyring", keyring}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+dir, "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(sig, data)
	if err != nil {
		t.Fatalf("gpgv rejects repomd.xml.asc: %v\n%s", err, out)
	}
	if n := strings.Count(out, "Good signature"); n != 2 {
		t.Errorf("gpgv found %d good signatures, want 2:\n%s", n, out)
	}
	for _, fpr := range []string{seedFpr, gen.Fingerprint} {
		if !strings.Contains(out, fpr) && !strings.Contains(out, fpr[24:]) {
			t.Errorf("gpgv output does not name key %s:\n%s", fpr, out)
		}
	}
	if out, err := run(sig, tampered); err == nil {
		t.Errorf("gpgv accepts a changed repomd.xml:\n%s", out)
	}

	// The .repo file turns on repo_gpgcheck and points at a key that the
	// repository serves.
	rf := e.get("/el9/el9.repo").want(t, http.StatusOK, ".repo").body
	keyURL := e.url + "/el9/repodata/repomd.xml.key"
	for _, want := range []string{"\nrepo_gpgcheck=1\n", "\ngpgkey=" + keyURL + "\n"} {
		if !bytes.Contains(rf, []byte(want)) {
			t.Errorf(".repo lacks %q:\n%s", strings.TrimSpace(want), rf)
		}
	}
	keyResp := e.get(strings.TrimPrefix(keyURL, e.url)).want(t, http.StatusOK, "gpgkey URL")
	if ct := keyResp.header.Get("Content-Type"); ct != "application/pgp-keys" {
		t.Errorf("gpgkey Content-Type %q, want application/pgp-keys", ct)
	}
	key := keyResp.body
	if _, fprs := publicKeys(t, key); !slices.Equal(fprs, []string{seedFpr, gen.Fingerprint}) {
		t.Errorf("gpgkey serves %v", fprs)
	}

	// End of the rotation: the new key alone.
	r = e.call(http.MethodPatch, "/api/v1/repos/el9", e.admin, []byte(`{"keys":["new"]}`)).want(t, http.StatusOK, "sign with the new key")
	if got := decodeJSON[signedRepo](t, r).signers(); !slices.Equal(got, []string{"new=" + gen.Fingerprint}) {
		t.Errorf("signing after the rotation = %v", got)
	}
	e.checkRepomdSignature(t, "el9", []string{gen.Fingerprint})

	// Refused changes leave the repository as it was.
	cur := decodeJSON[signedRepo](t, e.get("/api/v1/repos/el9").want(t, http.StatusOK, "show"))
	for _, body := range []string{`{"keys":["nope"]}`, `{"keys":["new","default","new"]}`} {
		r := e.call(http.MethodPatch, "/api/v1/repos/el9", e.admin, []byte(body)).want(t, http.StatusBadRequest, "PATCH "+body)
		r.apiErr(t)
	}
	e.call(http.MethodPatch, "/api/v1/repos/el9", e.token("ci", "write", "el9"), []byte(`{"keys":[]}`)).want(t, http.StatusForbidden, "PATCH with a write token")
	if now := decodeJSON[signedRepo](t, e.get("/api/v1/repos/el9").want(t, http.StatusOK, "show")); now.CurrentGeneration != cur.CurrentGeneration ||
		!slices.Equal(now.signers(), cur.signers()) {
		t.Errorf("refused PATCHes changed el9: %+v -> %+v", cur, now)
	}
}

func TestUnsignedRepo(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	r := e.call(http.MethodPost, "/api/v1/repos", e.admin, []byte(`{"name":"plain","format":"rpm","keys":[]}`)).want(t, http.StatusCreated, "create unsigned")
	if rp := decodeJSON[signedRepo](t, r); rp.Signing == nil || len(rp.Signing) != 0 {
		t.Errorf("unsigned repository signing = %v", rp.Signing)
	}
	rf := string(e.get("/plain/plain.repo").want(t, http.StatusOK, ".repo").body)
	if !strings.Contains(rf, "\nrepo_gpgcheck=0\n") || strings.Contains(rf, "gpgkey") || strings.Contains(rf, "repo_gpgcheck=1") {
		t.Errorf("unsigned .repo:\n%s", rf)
	}
	e.get("/plain/repodata/repomd.xml").want(t, http.StatusOK, "repomd.xml")
	for _, p := range []string{"repodata/repomd.xml.asc", "repodata/repomd.xml.key", "key.asc", "key.gpg"} {
		e.get("/plain/"+p).want(t, http.StatusNotFound, "unsigned "+p)
	}
	// Unknown keys are refused at creation, and nothing is created.
	r = e.call(http.MethodPost, "/api/v1/repos", e.admin, []byte(`{"name":"bad","format":"rpm","keys":["nope"]}`)).want(t, http.StatusBadRequest, "create with an unknown key")
	if msg, _ := r.apiErr(t); !strings.Contains(msg, "nope") {
		t.Errorf("create with an unknown key: %q", msg)
	}
	e.get("/api/v1/repos/bad").want(t, http.StatusNotFound, "refused repository")

	// Signing it later turns repo_gpgcheck on.
	e.call(http.MethodPatch, "/api/v1/repos/plain", e.admin, []byte(`{"keys":["default"]}`)).want(t, http.StatusOK, "sign plain")
	if rf := string(e.get("/plain/plain.repo").want(t, http.StatusOK, ".repo").body); !strings.Contains(rf, "\nrepo_gpgcheck=1\n") {
		t.Errorf(".repo after signing:\n%s", rf)
	}
	e.checkRepomdSignature(t, "plain", []string{fprOf(readEntities(t, seedArmored(t))[0])})
}
