package sign

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Keyring errors.
var (
	// ErrKeyNotFound means the keyring has no key of that name.
	ErrKeyNotFound = errors.New("sign: no such key")
	// ErrKeyExists means the name is taken.
	ErrKeyExists = errors.New("sign: a key with that name already exists")
	// ErrKeyName means a key name is not acceptable.
	ErrKeyName = errors.New("sign: invalid key name")
	// ErrExternalKey means the key is configured by path and cannot be
	// changed through the keyring.
	ErrExternalKey = errors.New("sign: key is referenced by path in the server configuration")
)

var keyNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// KeyInfo describes a key of a keyring; it holds nothing secret.
type KeyInfo struct {
	Name        string
	Fingerprint string
	UserIDs     []string
	Created     time.Time
	Algorithm   string
	// External is true for keys referenced by path in the configuration.
	External bool
	// Path is the file the private key is read from.
	Path string
}

// Info describes k.
func (k *Key) Info() KeyInfo {
	pk := k.entity.PrimaryKey
	info := KeyInfo{Fingerprint: k.Fingerprint(), Created: pk.CreationTime.UTC()}
	info.Algorithm = fmt.Sprintf("algorithm %d", pk.PubKeyAlgo)
	if bits, err := pk.BitLength(); err == nil && pk.PubKeyAlgo == packet.PubKeyAlgoRSA {
		info.Algorithm = fmt.Sprintf("rsa%d", bits)
	}
	if pk.PubKeyAlgo == packet.PubKeyAlgoEdDSA {
		info.Algorithm = Ed25519
	}
	for id := range k.entity.Identities {
		info.UserIDs = append(info.UserIDs, id)
	}
	sort.Strings(info.UserIDs)
	return info
}

// ExternalKey references a private key file outside the keyring directory.
type ExternalKey struct {
	Path string
	// Passphrase decrypts an encrypted key (nil for a key in the clear).
	Passphrase []byte
}

// Keyring holds the server's named signing keys. Keys it creates or
// imports are stored unencrypted as ASCII-armored private keys in its
// directory (mode 0700, files 0600, written atomically and synced); keys
// referenced by path in the configuration are read at open and never
// written. It is safe for concurrent use.
type Keyring struct {
	dir string

	mu   sync.RWMutex
	keys map[string]*entry
}

type entry struct {
	key      *Key
	path     string
	external bool
}

// OpenKeyring reads every key of dir (created if missing) and the external
// keys. A file that does not parse is an error: a server must not start
// with a signing key it cannot use.
func OpenKeyring(dir string, external map[string]ExternalKey) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sign: create key directory: %w", err)
	}
	kr := &Keyring{dir: dir, keys: map[string]*entry{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.asc"))
	if err != nil {
		return nil, err
	}
	for _, p := range names {
		name := strings.TrimSuffix(filepath.Base(p), ".asc")
		if !keyNameRE.MatchString(name) {
			continue
		}
		k, err := readKey(p, nil)
		if err != nil {
			return nil, err
		}
		kr.keys[name] = &entry{key: k, path: p}
	}
	for name, ext := range external {
		if !keyNameRE.MatchString(name) {
			return nil, fmt.Errorf("%w: %q", ErrKeyName, name)
		}
		if _, ok := kr.keys[name]; ok {
			return nil, fmt.Errorf("%w: %q is both in %s and configured by path", ErrKeyExists, name, dir)
		}
		k, err := readKey(ext.Path, ext.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("sign: key %q (configured by path): %w", name, err)
		}
		kr.keys[name] = &entry{key: k, path: ext.Path, external: true}
	}
	// Stale temporary files of an interrupted write; recent ones may be
	// another server's write in progress (a key directory shared by the
	// nodes of a cluster).
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmps) > 0 {
		for _, t := range tmps {
			if fi, err := os.Stat(t); err == nil && time.Since(fi.ModTime()) > time.Minute {
				_ = os.Remove(t)
			}
		}
	}
	return kr, nil
}

func readKey(path string, passphrase []byte) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sign: read key: %w", err)
	}
	k, err := ParsePrivate(b, passphrase)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// Dir returns the keyring's directory.
func (kr *Keyring) Dir() string { return kr.dir }

// Get returns the key of that name. A key not known yet is looked for in
// the directory, where another server sharing it may have written it since
// this keyring was opened.
func (kr *Keyring) Get(name string) (*Key, error) {
	kr.mu.RLock()
	e, ok := kr.keys[name]
	kr.mu.RUnlock()
	if ok {
		return e.key, nil
	}
	if !keyNameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	p := filepath.Join(kr.dir, name+".asc")
	k, err := readKey(p, nil)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
		}
		return nil, err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if e, ok := kr.keys[name]; ok {
		return e.key, nil
	}
	kr.keys[name] = &entry{key: k, path: p}
	return k, nil
}

// List describes every key, by name.
func (kr *Keyring) List() []KeyInfo {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	out := make([]KeyInfo, 0, len(kr.keys))
	for name, e := range kr.keys {
		info := e.key.Info()
		info.Name, info.External, info.Path = name, e.external, e.path
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Describe describes one key.
func (kr *Keyring) Describe(name string) (KeyInfo, error) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	e, ok := kr.keys[name]
	if !ok {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	info := e.key.Info()
	info.Name, info.External, info.Path = name, e.external, e.path
	return info, nil
}

// Signer returns a Signer over the named keys, in order.
func (kr *Keyring) Signer(names []string) (*Signer, error) {
	keys := make([]*Key, 0, len(names))
	for _, n := range names {
		k, err := kr.Get(n)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return NewSigner(keys...)
}

// Generate creates and stores a new key. uid is the user ID's name part
// (the key name if empty).
func (kr *Keyring) Generate(name, uid, email, algo string) (*Key, error) {
	if err := kr.checkNew(name); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = name
	}
	k, err := Generate(uid, email, algo, time.Now())
	if err != nil {
		return nil, err
	}
	return k, kr.store(name, k)
}

// Import stores an armored private key (decrypted with passphrase if it is
// encrypted) under name. The key is stored unencrypted: the server signs
// without prompts.
func (kr *Keyring) Import(name string, armored, passphrase []byte) (*Key, error) {
	if err := kr.checkNew(name); err != nil {
		return nil, err
	}
	k, err := ParsePrivate(armored, passphrase)
	if err != nil {
		return nil, err
	}
	return k, kr.store(name, k)
}

// Delete removes a stored key. Configured (external) keys cannot be
// deleted here.
func (kr *Keyring) Delete(name string) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	e, ok := kr.keys[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	if e.external {
		return fmt.Errorf("%w: %q (%s)", ErrExternalKey, name, e.path)
	}
	if err := os.Remove(e.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sign: delete key %q: %w", name, err)
	}
	delete(kr.keys, name)
	return syncDir(kr.dir)
}

func (kr *Keyring) checkNew(name string) error {
	if !keyNameRE.MatchString(name) {
		return fmt.Errorf("%w: %q must be 1-63 characters of letters, digits, '.', '_', '-' and start with a letter or digit", ErrKeyName, name)
	}
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if _, ok := kr.keys[name]; ok {
		return fmt.Errorf("%w: %q", ErrKeyExists, name)
	}
	return nil
}

// store writes k to the keyring directory: a temporary file, synced, then
// linked under its final name (never replacing an existing file).
func (kr *Keyring) store(name string, k *Key) error {
	armored, err := k.ArmoredPrivate()
	if err != nil {
		return err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if _, ok := kr.keys[name]; ok {
		return fmt.Errorf("%w: %q", ErrKeyExists, name)
	}
	final := filepath.Join(kr.dir, name+".asc")
	f, err := os.CreateTemp(kr.dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("sign: store key %q: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("sign: store key %q: %w", name, err)
	}
	if _, err := f.Write(armored); err != nil {
		f.Close()
		return fmt.Errorf("sign: store key %q: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sign: store key %q: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sign: store key %q: %w", name, err)
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %q (file %s)", ErrKeyExists, name, final)
		}
		return fmt.Errorf("sign: store key %q: %w", name, err)
	}
	if err := syncDir(kr.dir); err != nil {
		return err
	}
	kr.keys[name] = &entry{key: k, path: final}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ArmoredPublicKeys returns the public keys of the named keys as one
// armored block.
func (kr *Keyring) ArmoredPublicKeys(names []string) ([]byte, error) {
	s, err := kr.Signer(names)
	if err != nil {
		return nil, err
	}
	return s.PublicKeys()
}
