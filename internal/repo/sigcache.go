package repo

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/packyard/packyard/internal/format"
)

// sigReuseFor is how long a signature over unchanged data is reused. A
// signature carries its creation time, so a database that has not changed
// for longer gets a fresh one; keys that expire or are revoked are then
// noticed within this time.
const sigReuseFor = time.Hour

// sigCache keeps the binary signatures of one publisher's last build, so
// that the next build reuses the signature of every database whose bytes
// did not change (pacman's NAME.db.sig of the architectures an upload did
// not touch) instead of computing it again: an RSA signature is
// milliseconds of CPU, and unchanged .sig files keep their bytes for
// mirrors and edges. Owned by the publisher's goroutine; the signer it
// wraps may be called concurrently within one build.
type sigCache struct {
	prev map[sigKey]cachedSig
}

type sigKey struct {
	keys  [sha256.Size]byte // the signing keys: a digest of their public keys
	state string            // the SHA-256 state after all the data
}

type cachedSig struct {
	sig []byte
	at  time.Time
}

// wrap returns signer with DetachBinaryState served from the previous
// build's signatures when the same keys signed the same data, and a
// function to call once the build succeeded, which keeps this build's
// signatures (and only those) for the next.
func (c *sigCache) wrap(signer format.Signer, publicKeys []byte, now time.Time) (format.Signer, func()) {
	cs := &cachingSigner{Signer: signer, keys: sha256.Sum256(publicKeys), now: now, prev: c.prev, next: map[sigKey]cachedSig{}}
	return cs, func() {
		cs.mu.Lock()
		c.prev = cs.next
		cs.mu.Unlock()
	}
}

type cachingSigner struct {
	format.Signer
	keys [sha256.Size]byte
	now  time.Time
	prev map[sigKey]cachedSig // read only

	mu   sync.Mutex
	next map[sigKey]cachedSig
}

func (cs *cachingSigner) DetachBinaryState(state []byte) ([]byte, error) {
	k := sigKey{keys: cs.keys, state: string(state)}
	if c, ok := cs.prev[k]; ok && cs.now.Sub(c.at) < sigReuseFor && !cs.now.Before(c.at) {
		cs.keep(k, c)
		return c.sig, nil
	}
	sig, err := cs.Signer.DetachBinaryState(state)
	if err != nil {
		return nil, err
	}
	cs.keep(k, cachedSig{sig: sig, at: cs.now})
	return sig, nil
}

func (cs *cachingSigner) keep(k sigKey, c cachedSig) {
	cs.mu.Lock()
	cs.next[k] = c
	cs.mu.Unlock()
}
