package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"
)

// An index file the origin publishes in parts (gzip members, tar chunks)
// changes in one part when one package is uploaded: the others are the
// same blobs as in the previous generation. partIndex remembers where the
// parts of the files the agent wrote lie on disk, so that the next
// generation's file is assembled from the parts at hand and only the
// changed ones are downloaded. Every part read back is checked against
// its digest before use; one that no longer matches (the file was
// replaced or damaged) is downloaded instead.
type partIndex struct {
	mu  sync.Mutex
	loc map[string]partLoc // by part digest
}

type partLoc struct {
	path      string
	off, size int64
}

// partIndexMax bounds the parts remembered; past it the index starts
// again empty (costing one full download of each multi-part file).
const partIndexMax = 1 << 16

// partReuseMax bounds a part read back into memory.
const partReuseMax = 64 << 20

// record notes that the file at path consists of parts of these sizes.
func (x *partIndex) record(path string, digests []string, sizes []int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.loc == nil || len(x.loc)+len(digests) > partIndexMax {
		x.loc = map[string]partLoc{}
	}
	var off int64
	for i, d := range digests {
		x.loc[d] = partLoc{path: path, off: off, size: sizes[i]}
		off += sizes[i]
	}
}

// read returns the bytes of the part with digest d from a file on disk,
// or false if none is known or its bytes no longer match.
func (x *partIndex) read(d string) ([]byte, bool) {
	x.mu.Lock()
	l, ok := x.loc[d]
	x.mu.Unlock()
	if !ok || l.size > partReuseMax {
		return nil, false
	}
	f, err := os.Open(l.path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b := make([]byte, l.size)
	if _, err := io.ReadFull(io.NewSectionReader(f, l.off, l.size), b); err != nil {
		return nil, false
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d {
		return nil, false
	}
	return b, true
}
