package repo

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
)

// Assembly of an index stream (header, every entry's fragment, footer):
//
//   - Entries come in package ID order, so a new upload appends to the last
//     chunk instead of landing in the middle.
//   - Chunks end at entries whose ID hash has its low bits zero (or at
//     chunkMax entries). Boundaries depend only on the IDs, so adding or
//     removing a package changes one chunk.
//   - Each chunk of each encoding is one self-contained gzip member, zstd
//     frame or xz stream, stored as its own blob; the file is the
//     concatenation of its parts (meta.GenFile.Parts) and is never written
//     whole. A publish writes only the chunks that changed.
//   - The SHA-256 of the whole file (and of its decoded form, for
//     repomd.xml's open-checksum) resumes from the hash state saved after
//     the last unchanged chunk, so hashing costs what changed plus what
//     follows it: for uploads, the last chunk.
const (
	chunkMask = 127
	chunkMax  = 512
)

func isBoundary(id int64) bool {
	// A multiplicative hash spreads sequential IDs over the low bits.
	return (uint64(id)*0x9E3779B97F4A7C15)>>57&chunkMask == 0
}

// chunkEntries cuts entries into chunks.
func chunkEntries(entries []*format.Entry) [][]*format.Entry {
	var out [][]*format.Entry
	start := 0
	for i, e := range entries {
		if i+1-start >= chunkMax || isBoundary(e.ID) {
			out = append(out, entries[start:i+1])
			start = i + 1
		}
	}
	if start < len(entries) {
		out = append(out, entries[start:])
	}
	return out
}

// chunkKey names a chunk's content: fragments never change once rendered,
// so the fragment kind and the entry IDs identify the bytes.
func chunkKey(kind string, chunk []*format.Entry) string {
	b := make([]byte, 0, len(kind)+1+8*len(chunk))
	b = append(b, kind...)
	b = append(b, 0)
	for _, e := range chunk {
		b = binary.LittleEndian.AppendUint64(b, uint64(e.ID))
	}
	return string(b)
}

// storedChunk is an encoded chunk in the blob store.
type storedChunk struct {
	digest string
	size   int64
	used   bool
	rec    xzRecord // for xz blocks
}

// outputState remembers one output of a stream (its decoded form, or one
// encoding) between publishes: the bytes before the first chunk, the chunk
// keys, their blobs and the hash state after each of them.
type outputState struct {
	head []byte
	// headPart and footPart are the blobs of head and foot (stored outputs).
	headPart, footPart string
	foot               []byte
	keys               []string
	parts              []string // blob per chunk; nil for hash-only outputs
	states             [][]byte // states[i]: SHA-256 state after head and chunks[:i]
	sizes              []int64
	recs               []xzRecord // xz: each chunk's block record
}

// assembler builds the streams of a repository's publishes. It is owned by
// the repository's publisher goroutine.
type assembler struct {
	blobs blob.Store
	// mu guards the maps and counters: the streams of one publish are
	// built concurrently.
	mu      sync.Mutex
	chunks  map[string]*storedChunk // by encoding + chunk key
	outputs map[string]*outputState // by stream name + encoding
	// encoded counts chunks encoded and hashed counts chunk bytes hashed
	// by the current publish; tests and logs use them.
	encoded int
	hashed  int64

	// Entries do not keep their fragments between publishes (a large
	// repository's fragments would not fit the memory budget); load reads
	// the fragments of the entries a publish re-encodes, into loaded.
	load   func(ctx context.Context, ids []int64) (map[int64]map[string][]byte, error)
	loaded map[int64]map[string][]byte

	// stores, between begin and wait, holds the blob writes of the
	// current publish: a part's digest is known as soon as it is encoded,
	// so the stream's hash and signature need not wait for its fsync.
	stores   *errgroup.Group
	storeCtx context.Context

	// warmed holds chunks compressed ahead of a mirror's publish
	// (prewarm.go), by encoding + chunk key; warmBytes is their size.
	// taken counts the ones the current publish used.
	warmed    map[string]warmChunk
	warmBytes int64
	taken     int
}

// maxStores bounds the blob writes one publish runs at once.
const maxStores = 8

// begin starts a publish: from now on put stores in the background.
func (a *assembler) begin(ctx context.Context) {
	a.stores, a.storeCtx = errgroup.WithContext(ctx)
	a.stores.SetLimit(maxStores)
}

// wait returns once every blob put since begin is stored, with the first
// error. A publish must not name its blobs before wait returned nil; after
// an error the assembler must be dropped, since its chunk cache may name
// blobs that were never stored.
func (a *assembler) wait() error {
	if a.stores == nil {
		return nil
	}
	err := a.stores.Wait()
	a.stores, a.storeCtx = nil, nil
	return err
}

func newAssembler(blobs blob.Store, load func(ctx context.Context, ids []int64) (map[int64]map[string][]byte, error)) *assembler {
	return &assembler{blobs: blobs, chunks: map[string]*storedChunk{}, outputs: map[string]*outputState{},
		load: load, loaded: map[int64]map[string][]byte{}, warmed: map[string]warmChunk{}}
}

// fragments returns the fragments of a chunk's entries, loading the ones
// that are not in memory.
func (a *assembler) fragments(ctx context.Context, entries []*format.Entry) ([]map[string][]byte, error) {
	out := make([]map[string][]byte, len(entries))
	var missing []int64
	a.mu.Lock()
	for i, e := range entries {
		if e.Fragments != nil {
			out[i] = e.Fragments
		} else if f, ok := a.loaded[e.ID]; ok {
			out[i] = f
		} else {
			missing = append(missing, e.ID)
		}
	}
	a.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	if a.load == nil {
		return nil, fmt.Errorf("fragments of %d packages are not in memory", len(missing))
	}
	m, err := a.load(ctx, missing)
	if err != nil {
		return nil, fmt.Errorf("load fragments: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, f := range m {
		a.loaded[id] = f
	}
	for i, e := range entries {
		if out[i] == nil {
			if out[i] = a.loaded[e.ID]; out[i] == nil {
				return nil, fmt.Errorf("fragments of package %d are missing from the metadata store", e.ID)
			}
		}
	}
	return out, nil
}

// forget drops fragments after a publish, except those of the last
// chunkMax entries: uploads append to the last chunk, which is re-encoded
// on the next publish, so keeping its entries' fragments saves reading them
// back; all other entries keep only what a chunk key needs.
func (a *assembler) forget(entries []*format.Entry) {
	tail := max(0, len(entries)-chunkMax)
	for _, e := range entries[:tail] {
		e.Fragments = nil
	}
	for _, e := range entries[tail:] {
		if e.Fragments == nil {
			e.Fragments = a.loaded[e.ID]
		}
	}
	a.loaded = map[int64]map[string][]byte{}
}

// sweep forgets chunks that the last publish did not use, and the
// prewarmed ones it did not take.
func (a *assembler) sweep() {
	for k, c := range a.chunks {
		if !c.used {
			delete(a.chunks, k)
		}
		c.used = false
	}
	a.warmed, a.warmBytes = map[string]warmChunk{}, 0
}

// build assembles one stream over its (already filtered, ID-ordered)
// entries, stores every encoding's new chunks and returns what it built.
func (a *assembler) build(ctx context.Context, st format.Stream, entries []*format.Entry) (format.Built, error) {
	out := format.Built{Name: st.Name, Encoded: map[format.Encoding]format.Blob{}}
	header := st.Header(len(entries))
	chunks := chunkEntries(entries)
	keys := make([]string, len(chunks))
	for i, c := range chunks {
		keys[i] = chunkKey(st.Fragment, c)
	}
	storeRaw := false
	for _, enc := range st.Encodings {
		storeRaw = storeRaw || enc == format.Raw
	}
	raw, err := a.output(ctx, st, format.Raw, header, chunks, keys, storeRaw)
	if err != nil {
		return out, fmt.Errorf("assemble %s: %w", st.Name, err)
	}
	out.Raw = raw
	for _, enc := range st.Encodings {
		if enc == format.Raw {
			out.Encoded[enc] = raw
			continue
		}
		b, err := a.output(ctx, st, enc, header, chunks, keys, true)
		if err != nil {
			return out, fmt.Errorf("assemble %s (%s): %w", st.Name, encName(enc), err)
		}
		out.Encoded[enc] = b
	}
	return out, nil
}

// output assembles one output of a stream. With store, every part is a
// blob and the result lists them; otherwise only digest and size are
// computed (the decoded form that repomd.xml's open-checksum needs).
func (a *assembler) output(ctx context.Context, st format.Stream, enc format.Encoding, header []byte, chunks [][]*format.Entry, keys []string, store bool) (format.Blob, error) {
	id := st.Name + "\x00" + encName(enc)
	if store {
		id += "\x00stored"
	}
	if st.LegacyHashes {
		id += "\x00legacy"
	}
	// An xz output is one stream: the head is the stream header and the
	// header's block, and the foot (built after the chunks) the footer's
	// block, the index and the stream footer (see xzblocks.go).
	var head, foot, footBlock []byte
	var headRecs, footRecs []xzRecord
	var err error
	if enc == format.Xz {
		hb, hr, err := xzBlock(header)
		if err != nil {
			return format.Blob{}, err
		}
		head = append(append([]byte(nil), xzStreamHeader...), hb...)
		if hb != nil {
			headRecs = []xzRecord{hr}
		}
		fb, fr, err := xzBlock(st.Footer)
		if err != nil {
			return format.Blob{}, err
		}
		if footBlock = fb; fb != nil {
			footRecs = []xzRecord{fr}
		}
	} else {
		if head, err = encode(enc, header); err != nil {
			return format.Blob{}, err
		}
		if foot, err = encode(enc, st.Footer); err != nil {
			return format.Blob{}, err
		}
	}
	a.mu.Lock()
	prev := a.outputs[id]
	a.mu.Unlock()
	next := &outputState{head: head, keys: keys, states: make([][]byte, len(keys)+1), sizes: make([]int64, len(keys)+1),
		recs: make([]xzRecord, len(keys))}
	if store {
		next.parts = make([]string, len(keys))
	}

	// Resume after the chunks that are the same as last time.
	h := newHashSet(st.LegacyHashes)
	same := 0
	if prev != nil && bytes.Equal(prev.head, head) {
		for same < len(keys) && same < len(prev.keys) && keys[same] == prev.keys[same] {
			same++
		}
		if err := h.unmarshal(prev.states[same]); err != nil {
			return format.Blob{}, err
		}
		copy(next.states, prev.states[:same+1])
		copy(next.sizes, prev.sizes[:same+1])
		copy(next.recs, prev.recs[:same])
		if store {
			copy(next.parts, prev.parts[:same])
		}
	} else {
		h.Write(head)
		if next.states[0], err = h.marshal(); err != nil {
			return format.Blob{}, err
		}
		next.sizes[0] = int64(len(head))
	}
	size := next.sizes[same]
	// Chunks are encoded ahead, a few at a time on every core, and
	// hashed in order.
	ahead := newChunkWindow(len(chunks), func(i int) chunkResult {
		var r chunkResult
		r.data, r.digest, r.rec, r.err = a.chunk(ctx, st.Fragment, enc, keys[i], chunks[i], store)
		return r
	})
	defer ahead.close()
	for i := same; i < len(chunks); i++ {
		r := ahead.get(i)
		data, digest, rec, err := r.data, r.digest, r.rec, r.err
		if err != nil {
			return format.Blob{}, err
		}
		next.recs[i] = rec
		h.Write(data)
		a.mu.Lock()
		a.hashed += int64(len(data))
		a.mu.Unlock()
		size += int64(len(data))
		if next.states[i+1], err = h.marshal(); err != nil {
			return format.Blob{}, err
		}
		next.sizes[i+1] = size
		if store {
			next.parts[i] = digest
		}
	}
	a.mu.Lock()
	for i := 0; i < same && store; i++ {
		if c := a.chunks[encName(enc)+"\x00"+keys[i]]; c != nil {
			c.used = true
		}
	}
	a.outputs[id] = next
	a.mu.Unlock()
	if enc == format.Xz {
		recs := make([]xzRecord, 0, len(headRecs)+len(next.recs)+len(footRecs))
		recs = append(append(append(recs, headRecs...), next.recs...), footRecs...)
		foot = append(footBlock, xzTail(recs)...)
	}
	h.Write(foot)
	size += int64(len(foot))

	res := format.Blob{Size: size}
	res.SHA256, res.MD5, res.SHA1 = h.sums()
	if res.State, err = h.hs[0].(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
		return format.Blob{}, err
	}
	if store {
		// Header and footer rarely change: store them only when they do.
		hp, fp := "", ""
		if prev != nil && bytes.Equal(prev.head, head) && prev.headPart != "" {
			hp = prev.headPart
		} else if hp, err = a.put(ctx, head); err != nil {
			return format.Blob{}, err
		}
		if prev != nil && bytes.Equal(prev.foot, foot) && prev.footPart != "" {
			fp = prev.footPart
		} else if fp, err = a.put(ctx, foot); err != nil {
			return format.Blob{}, err
		}
		next.headPart, next.footPart, next.foot = hp, fp, foot
		res.Parts = make([]string, 0, len(next.parts)+2)
		res.Parts = append(append(append(res.Parts, hp), next.parts...), fp)
	}
	return res, nil
}

// hashSet is the SHA-256 (and, for APT, MD5 and SHA-1) of an output,
// whose state can be saved and resumed.
type hashSet struct {
	hs []hash.Hash // sha256, then md5 and sha1 when legacy
}

func newHashSet(legacy bool) *hashSet {
	h := &hashSet{hs: []hash.Hash{sha256.New()}}
	if legacy {
		h.hs = append(h.hs, md5.New(), sha1.New())
	}
	return h
}

func (h *hashSet) Write(b []byte) {
	for _, x := range h.hs {
		x.Write(b)
	}
}

// marshal saves the states, each behind its 4-byte length.
func (h *hashSet) marshal() ([]byte, error) {
	var out []byte
	for _, x := range h.hs {
		b, err := x.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

func (h *hashSet) unmarshal(b []byte) error {
	for _, x := range h.hs {
		if len(b) < 4 {
			return errors.New("assemble: truncated hash state")
		}
		n := int(binary.LittleEndian.Uint32(b))
		if len(b) < 4+n {
			return errors.New("assemble: truncated hash state")
		}
		if err := x.(encoding.BinaryUnmarshaler).UnmarshalBinary(b[4 : 4+n]); err != nil {
			return err
		}
		b = b[4+n:]
	}
	return nil
}

// sums returns the hex SHA-256, MD5 and SHA-1 ("" without legacy).
func (h *hashSet) sums() (sha, md, sha1 string) {
	sha = hex.EncodeToString(h.hs[0].Sum(nil))
	if len(h.hs) == 3 {
		md, sha1 = hex.EncodeToString(h.hs[1].Sum(nil)), hex.EncodeToString(h.hs[2].Sum(nil))
	}
	return sha, md, sha1
}

// chunk returns the bytes of one chunk in one encoding and, with store, the
// digest of its blob: from the store when it was encoded before, encoded
// (and stored) otherwise.
func (a *assembler) chunk(ctx context.Context, kind string, enc format.Encoding, key string, entries []*format.Entry, store bool) ([]byte, string, xzRecord, error) {
	ck := encName(enc) + "\x00" + key
	a.mu.Lock()
	c, ok := a.chunks[ck]
	if ok && store {
		c.used = true
	}
	a.mu.Unlock()
	if ok && store {
		data, err := blob.ReadAll(ctx, a.blobs, blob.Digest(c.digest))
		if err == nil {
			return data, c.digest, c.rec, nil
		}
		// Lost from the store: encode it again below.
	}
	if store {
		if c, ok := a.takeWarm(ck); ok {
			digest, err := a.put(ctx, c.data)
			if err != nil {
				return nil, "", xzRecord{}, err
			}
			a.mu.Lock()
			a.taken++
			a.chunks[ck] = &storedChunk{digest: digest, size: int64(len(c.data)), used: true, rec: c.rec}
			a.mu.Unlock()
			return c.data, digest, c.rec, nil
		}
	}
	data, rec, err := a.encodeChunk(ctx, kind, enc, entries)
	if err != nil {
		return nil, "", xzRecord{}, err
	}
	if !store {
		return data, "", rec, nil
	}
	digest, err := a.put(ctx, data)
	if err != nil {
		return nil, "", xzRecord{}, err
	}
	a.mu.Lock()
	a.encoded++
	a.chunks[ck] = &storedChunk{digest: digest, size: int64(len(data)), used: true, rec: rec}
	a.mu.Unlock()
	return data, digest, rec, nil
}

// put stores data, in the background between begin and wait, and returns
// its digest.
func (a *assembler) put(ctx context.Context, data []byte) (string, error) {
	if a.stores == nil {
		info, err := blob.Put(ctx, a.blobs, data)
		if err != nil {
			return "", err
		}
		return string(info.Digest), nil
	}
	d := blob.DigestOf(data)
	sctx := a.storeCtx
	a.stores.Go(func() error {
		info, err := blob.Put(sctx, a.blobs, data)
		if err == nil && info.Digest != d {
			err = fmt.Errorf("stored %s as %s: %w", d, info.Digest, blob.ErrDigestMismatch)
		}
		return err
	})
	return string(d), nil
}
