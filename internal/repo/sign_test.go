package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/packyard/packyard/internal/sign"
)

var (
	secondOnce    sync.Once
	secondArmored []byte
	secondErr     error
)

// testKeyring returns a keyring in a temporary directory holding
// "default" (the fixed key of internal/sign/testdata) and "second" (a key
// generated once per test binary), and their fingerprints.
func testKeyring(t *testing.T) (*sign.Keyring, map[string]string) {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join("..", "sign", "testdata", "seed-key.asc"))
	if err != nil {
		t.Fatal(err)
	}
	secondOnce.Do(func() {
		var k *sign.Key
		k, secondErr = sign.Generate("packyard second", "second@example.com", "", time.Now().Add(-time.Hour))
		if secondErr == nil {
			secondArmored, secondErr = k.ArmoredPrivate()
		}
	})
	if secondErr != nil {
		t.Fatal(secondErr)
	}
	kr, err := sign.OpenKeyring(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fprs := map[string]string{}
	for name, armored := range map[string][]byte{"default": seed, "second": secondArmored} {
		k, err := kr.Import(name, armored, nil)
		if err != nil {
			t.Fatal(err)
		}
		fprs[name] = k.Fingerprint()
	}
	if fprs["default"] == fprs["second"] {
		t.Fatal("the two test keys are the same key")
	}
	return kr, fprs
}

// newSignEnv is newEnv with a keyring and "default" as the default key;
// its repository "r" is therefore signed by default.
func newSignEnv(t *testing.T) (*testEnv, map[string]string) {
	t.Helper()
	kr, fprs := testKeyring(t)
	return newEnvOpts(t, Options{MaxUploadSize: 1 << 20, GenerationGrace: time.Hour, Keys: kr, DefaultKey: "default"}), fprs
}

// readObject reads what repository repoName serves at p.
func (e *testEnv) readObject(t *testing.T, repoName, p string) ([]byte, *Object) {
	t.Helper()
	ctx := context.Background()
	obj, err := e.svc.Lookup(ctx, repoName, p)
	if err != nil {
		t.Fatalf("lookup %s/%s: %v", repoName, p, err)
	}
	rd, err := e.svc.Open(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return b, obj
}

// publicFingerprints parses a public keyring (armored or binary) and
// returns its keys' fingerprints in order; it fails the test if any key
// carries private material.
func publicFingerprints(t *testing.T, b []byte, armored bool) []string {
	t.Helper()
	var ring openpgp.EntityList
	var err error
	if armored {
		ring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("parse public keys: %v", err)
	}
	var out []string
	for _, e := range ring {
		if e.PrivateKey != nil {
			t.Errorf("published key %X carries its private key", e.PrimaryKey.Fingerprint)
		}
		out = append(out, strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)))
	}
	return out
}

// checkPublishedKeys checks that the current generation of repoName
// serves key.asc and key.gpg holding exactly the keys want, in order.
func (e *testEnv) checkPublishedKeys(t *testing.T, repoName string, want []string) {
	t.Helper()
	r, err := e.svc.GetRepo(context.Background(), repoName)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path    string
		armored bool
	}{{KeyASCPath, true}, {KeyGPGPath, false}} {
		b, obj := e.readObject(t, repoName, f.path)
		if obj.Generation != r.CurrentGeneration {
			t.Errorf("%s/%s comes from generation %d, current is %d", repoName, f.path, obj.Generation, r.CurrentGeneration)
		}
		if obj.ContentType != "application/pgp-keys" {
			t.Errorf("%s/%s content type %q", repoName, f.path, obj.ContentType)
		}
		if f.armored != bytes.HasPrefix(b, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
			t.Errorf("%s/%s starts %q", repoName, f.path, b[:min(len(b), 40)])
		}
		if got := publicFingerprints(t, b, f.armored); !slices.Equal(got, want) {
			t.Errorf("%s/%s holds keys %v, want %v", repoName, f.path, got, want)
		}
	}
}

// currentFiles lists the paths of the current generation's index files.
func (e *testEnv) currentFiles(t *testing.T, repoName string) []string {
	t.Helper()
	ctx := context.Background()
	r, err := e.svc.GetRepo(ctx, repoName)
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.meta.GetGeneration(ctx, r.ID, r.CurrentGeneration)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range g.Files {
		out = append(out, f.Path)
	}
	return out
}

// configMap decodes a repository configuration.
func configMap(t *testing.T, cfg []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatalf("configuration %s: %v", cfg, err)
	}
	return m
}

func TestNewRepoSignedWithDefaultKey(t *testing.T) {
	e, fprs := newSignEnv(t)
	ctx := context.Background()
	r, err := e.svc.GetRepo(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if got := configMap(t, r.Config)["keys"]; !reflect.DeepEqual(got, []any{"default"}) {
		t.Errorf("config keys = %v, want [default] (config %s)", got, r.Config)
	}
	e.checkPublishedKeys(t, "r", []string{fprs["default"]})
	infos, err := e.svc.SigningKeys(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != "default" || infos[0].Fingerprint != fprs["default"] {
		t.Errorf("SigningKeys = %+v", infos)
	}

	// Other settings are kept beside the default key, and an explicit
	// null means "not given".
	for name, cfg := range map[string]string{"origin": `{"origin":"Acme"}`, "null-keys": `{"keys":null,"origin":"Acme"}`} {
		r, err := e.svc.CreateRepo(ctx, RepoSpec{Name: name, Format: "line", Config: json.RawMessage(cfg)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := map[string]any{"keys": []any{"default"}, "origin": "Acme"}
		if got := configMap(t, r.Config); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: config = %v, want %v", name, got, want)
		}
		e.checkPublishedKeys(t, name, []string{fprs["default"]})
	}
	users, err := e.svc.ReposUsingKey(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(users)
	if want := []string{"null-keys", "origin", "r"}; !slices.Equal(users, want) {
		t.Errorf("ReposUsingKey(default) = %v, want %v", users, want)
	}
	if users, _ := e.svc.ReposUsingKey(ctx, "second"); len(users) != 0 {
		t.Errorf("ReposUsingKey(second) = %v, want none", users)
	}
}

func TestCreateRepoKeys(t *testing.T) {
	e, fprs := newSignEnv(t)
	ctx := context.Background()
	good := []struct {
		name, cfg string
		keys      []string // names, in signature order; empty: unsigned
	}{
		{"unsigned", `{"keys":[]}`, nil},
		{"second", `{"keys":["second"]}`, []string{"second"}},
		{"both", `{"keys":["second","default"]}`, []string{"second", "default"}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.svc.CreateRepo(ctx, RepoSpec{Name: tc.name, Format: "line", Config: json.RawMessage(tc.cfg)})
			if err != nil {
				t.Fatal(err)
			}
			st, err := RepoSettings(r)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(st.KeyNames(), tc.keys) {
				t.Errorf("KeyNames = %v, want %v", st.KeyNames(), tc.keys)
			}
			infos, err := e.svc.SigningKeys(r)
			if err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for i, n := range tc.keys {
				want = append(want, fprs[n])
				if i < len(infos) && infos[i].Name != n {
					t.Errorf("SigningKeys[%d] = %s, want %s", i, infos[i].Name, n)
				}
			}
			for _, info := range infos {
				got = append(got, info.Fingerprint)
			}
			if !slices.Equal(got, want) {
				t.Errorf("SigningKeys fingerprints = %v, want %v", got, want)
			}
			if len(tc.keys) > 0 {
				e.checkPublishedKeys(t, tc.name, want)
				return
			}
			if m := configMap(t, r.Config); !reflect.DeepEqual(m["keys"], []any{}) {
				t.Errorf("unsigned repository's config = %s, want keys []", r.Config)
			}
			for _, p := range []string{KeyASCPath, KeyGPGPath} {
				if obj, err := e.svc.Lookup(ctx, tc.name, p); !errors.Is(err, ErrObjectNotFound) {
					t.Errorf("unsigned repository serves %s: %+v %v", p, obj, err)
				}
			}
			// The index is published all the same.
			if _, err := e.svc.Lookup(ctx, tc.name, "INDEX"); err != nil {
				t.Errorf("unsigned repository has no INDEX: %v", err)
			}
		})
	}

	bad := []struct {
		name, cfg, msg string
	}{
		{"unknown key", `{"keys":["nope"]}`, "nope"},
		{"unknown second key", `{"keys":["default","nope"]}`, "nope"},
		{"three keys", `{"keys":["default","second","third"]}`, "two during a rotation"},
		{"same name twice", `{"keys":["default","default"]}`, "twice"},
		{"empty name", `{"keys":[""]}`, "no such key"},
		{"not a list", `{"keys":"default"}`, "keys"},
		{"not an object", `["default"]`, "configuration"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before, err := e.svc.ListRepos(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.CreateRepo(ctx, RepoSpec{Name: "bad", Format: "line", Config: json.RawMessage(tc.cfg)})
			if !errors.Is(err, ErrInvalidRepo) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CreateRepo(%s) error = %v, want ErrInvalidRepo mentioning %q", tc.cfg, err, tc.msg)
			}
			if _, err := e.svc.GetRepo(ctx, "bad"); !errors.Is(err, ErrRepoNotFound) {
				t.Errorf("refused repository exists: %v", err)
			}
			after, err := e.svc.ListRepos(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("%d repositories before a refused create, %d after", len(before), len(after))
			}
		})
	}
}

func TestCreateRepoWithoutKeyring(t *testing.T) {
	e := newEnv(t) // no keyring, no default key
	ctx := context.Background()
	r, err := e.svc.GetRepo(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := RepoSettings(r); st.Keys != nil || string(r.Config) != "{}" {
		t.Errorf("repository of a server without keys has config %s", r.Config)
	}
	if _, err := e.svc.Lookup(ctx, "r", KeyASCPath); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("key.asc without a keyring: %v", err)
	}
	_, err = e.svc.CreateRepo(ctx, RepoSpec{Name: "k", Format: "line", Config: json.RawMessage(`{"keys":["default"]}`)})
	if !errors.Is(err, ErrInvalidRepo) || !strings.Contains(err.Error(), "no keyring") {
		t.Errorf("CreateRepo naming a key on a server without keys: %v", err)
	}
	if _, err := e.svc.UpdateRepoConfig(ctx, "r", []byte(`{"keys":["default"]}`)); !errors.Is(err, ErrInvalidRepo) {
		t.Errorf("UpdateRepoConfig naming a key on a server without keys: %v", err)
	}
}

// A JSON null configuration (a Go caller's RepoSpec, or one stored by an
// older version) is an empty one.
func TestNullConfig(t *testing.T) {
	e, fprs := newSignEnv(t)
	ctx := context.Background()
	r, err := e.svc.CreateRepo(ctx, RepoSpec{Name: "n", Format: "line", Config: json.RawMessage("null")})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := RepoSettings(r); !slices.Equal(st.KeyNames(), []string{"default"}) {
		t.Errorf("config %s, want the default key", r.Config)
	}
	e.checkPublishedKeys(t, "n", []string{fprs["default"]})

	plain := newEnv(t)
	if _, err := plain.svc.CreateRepo(ctx, RepoSpec{Name: "n", Format: "line", Config: json.RawMessage("null")}); err != nil {
		t.Fatal(err)
	}
	r, err = plain.svc.UpdateRepoConfig(ctx, "n", []byte(`{"origin":"Acme"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := configMap(t, r.Config); !reflect.DeepEqual(got, map[string]any{"origin": "Acme"}) {
		t.Errorf("config after a patch = %s", r.Config)
	}
}

func TestUpdateRepoConfigRotatesKeys(t *testing.T) {
	e, fprs := newSignEnv(t)
	ctx := context.Background()
	res, err := e.upload("a", "1", "payload", true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.GetRepo(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	gen := r.CurrentGeneration
	steps := []struct {
		patch string
		keys  []string
	}{
		{`{"keys":["default","second"]}`, []string{"default", "second"}},
		{`{"keys":["second"]}`, []string{"second"}},
		{`{"keys":["second"]}`, []string{"second"}}, // the same again still republishes
		{`{"keys":[]}`, nil},
		{`{"keys":["default"]}`, []string{"default"}},
	}
	for _, st := range steps {
		r, err := e.svc.UpdateRepoConfig(ctx, "r", []byte(st.patch))
		if err != nil {
			t.Fatalf("UpdateRepoConfig(%s): %v", st.patch, err)
		}
		// Returned once the new generation is current.
		if r.CurrentGeneration <= gen {
			t.Fatalf("after %s: generation %d, was %d", st.patch, r.CurrentGeneration, gen)
		}
		gen = r.CurrentGeneration
		settings, err := RepoSettings(r)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(settings.KeyNames(), st.keys) {
			t.Errorf("after %s: KeyNames = %v", st.patch, settings.KeyNames())
		}
		files := e.currentFiles(t, "r")
		if len(st.keys) == 0 {
			if slices.Contains(files, KeyASCPath) || slices.Contains(files, KeyGPGPath) {
				t.Errorf("after %s: the unsigned generation has key files: %v", st.patch, files)
			}
		} else {
			var want []string
			for _, n := range st.keys {
				want = append(want, fprs[n])
			}
			e.checkPublishedKeys(t, "r", want)
		}
		if idx := e.index(t); !strings.Contains(idx, "a 1 "+res.Package.Digest) {
			t.Errorf("after %s: the package left the index:\n%s", st.patch, idx)
		}
		users, err := e.svc.ReposUsingKey(ctx, "second")
		if err != nil {
			t.Fatal(err)
		}
		if want := slices.Contains(st.keys, "second"); want != slices.Equal(users, []string{"r"}) {
			t.Errorf("after %s: ReposUsingKey(second) = %v", st.patch, users)
		}
	}
}

func TestUpdateRepoConfigRefused(t *testing.T) {
	e, _ := newSignEnv(t)
	ctx := context.Background()
	before, err := e.svc.GetRepo(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	for _, patch := range []string{
		`{"keys":["nope"]}`,
		`{"keys":["default","second","default"]}`,
		`{"keys":["second","second"]}`,
		`{"keys":{"name":"default"}}`,
		`{"valid_for":"soon"}`,
		`[1,2]`,
		`not json`,
	} {
		if _, err := e.svc.UpdateRepoConfig(ctx, "r", []byte(patch)); !errors.Is(err, ErrInvalidRepo) {
			t.Errorf("UpdateRepoConfig(%s) error = %v, want ErrInvalidRepo", patch, err)
		}
	}
	after, err := e.svc.GetRepo(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after.Config, before.Config) || after.CurrentGeneration != before.CurrentGeneration {
		t.Errorf("refused updates changed the repository: config %s -> %s, generation %d -> %d",
			before.Config, after.Config, before.CurrentGeneration, after.CurrentGeneration)
	}
	if _, err := e.svc.UpdateRepoConfig(ctx, "missing", []byte(`{}`)); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("UpdateRepoConfig(missing) error = %v, want ErrRepoNotFound", err)
	}
}

func TestUpdateRepoConfigMerges(t *testing.T) {
	e, _ := newSignEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateRepo(ctx, RepoSpec{Name: "m", Format: "line", Config: json.RawMessage(`{"origin":"Acme","label":"Old","x-note":{"a":1}}`)}); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.UpdateRepoConfig(ctx, "m", []byte(`{"label":null,"valid_for":"24h","x-note":{"b":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"keys": []any{"default"}, "origin": "Acme", "valid_for": "24h", "x-note": map[string]any{"b": 2.0}}
	if got := configMap(t, r.Config); !reflect.DeepEqual(got, want) {
		t.Errorf("config = %v, want %v", got, want)
	}
	// Removing the keys leaves the repository unsigned: absent means the
	// default only when a repository is created.
	r, err = e.svc.UpdateRepoConfig(ctx, "m", []byte(`{"keys":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := RepoSettings(r); st.Keys != nil || len(st.KeyNames()) != 0 {
		t.Errorf("keys after null: %s", r.Config)
	}
	if files := e.currentFiles(t, "m"); slices.Contains(files, KeyASCPath) {
		t.Errorf("repository without keys still publishes key.asc: %v", files)
	}
}

func TestMergeConfig(t *testing.T) {
	tests := []struct {
		name, cfg, patch, want string
	}{
		{"add", `{"a":1}`, `{"b":2}`, `{"a":1,"b":2}`},
		{"replace", `{"a":1,"b":2}`, `{"a":"x"}`, `{"a":"x","b":2}`},
		{"null removes", `{"a":1,"b":2}`, `{"a":null}`, `{"b":2}`},
		{"null with spaces removes", `{"a":1,"b":2}`, `{"a": null }`, `{"b":2}`},
		{"null of an absent key", `{"a":1}`, `{"z":null}`, `{"a":1}`},
		{"objects are replaced, not merged", `{"o":{"x":1,"y":2}}`, `{"o":{"y":3}}`, `{"o":{"y":3}}`},
		{"lists are replaced", `{"keys":["a","b"]}`, `{"keys":["b"]}`, `{"keys":["b"]}`},
		{"empty list is kept", `{"keys":["a"]}`, `{"keys":[]}`, `{"keys":[]}`},
		{"empty patch", `{"a":1}`, `{}`, `{"a":1}`},
		{"empty stored", ``, `{"a":1}`, `{"a":1}`},
		{"null stored", `null`, `{"a":1}`, `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeConfig([]byte(tc.cfg), []byte(tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("result %s: %v", got, err)
			}
			if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("mergeConfig(%s, %s) = %s, want %s", tc.cfg, tc.patch, got, tc.want)
			}
		})
	}
	for _, patch := range []string{`[1]`, `"keys"`, `42`, `{`, ``} {
		if _, err := mergeConfig([]byte(`{"a":1}`), []byte(patch)); !errors.Is(err, ErrInvalidRepo) {
			t.Errorf("mergeConfig with patch %q: %v, want ErrInvalidRepo", patch, err)
		}
	}
	if _, err := mergeConfig([]byte(`[1]`), []byte(`{"a":1}`)); err == nil || errors.Is(err, ErrInvalidRepo) {
		t.Errorf("mergeConfig of a stored non-object: %v, want an internal error", err)
	}
}

// Concurrent patches of different settings must all take effect: each is
// merged into the configuration the previous one left.
func TestUpdateRepoConfigConcurrentPatches(t *testing.T) {
	e, _ := newSignEnv(t)
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.svc.UpdateRepoConfig(ctx, "r", []byte(fmt.Sprintf(`{"x-%d":%d}`, i, i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("patch %d: %v", i, err)
		}
	}
	r, err := e.svc.GetRepo(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	m := configMap(t, r.Config)
	for i := range n {
		if v, ok := m[fmt.Sprintf("x-%d", i)]; !ok || v != float64(i) {
			t.Errorf("patch %d was lost: config %s", i, r.Config)
		}
	}
	if !reflect.DeepEqual(m["keys"], []any{"default"}) {
		t.Errorf("keys lost by concurrent patches: %s", r.Config)
	}
}
