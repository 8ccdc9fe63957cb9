package blobtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
	"testing"

	"github.com/packyard/packyard/internal/blob"
)

func testConcurrentSameContent(t *testing.T, s blob.Store) {
	content := pseudoRandom(4, 256<<10)
	d := blob.DigestOf(content)
	commitConcurrently(t, s, func(int) []byte { return content })
	checkBlobs(t, s, map[blob.Digest]int64{d: int64(len(content))})
	checkContent(t, s, d, content)
}

func testConcurrentDifferentContent(t *testing.T, s blob.Store) {
	contents := map[blob.Digest][]byte{}
	want := map[blob.Digest]int64{}
	commitConcurrently(t, s, func(i int) []byte { return pseudoRandom(uint64(100+i), 64<<10) })
	for i := range writers {
		content := pseudoRandom(uint64(100+i), 64<<10)
		d := blob.DigestOf(content)
		contents[d] = content
		want[d] = int64(len(content))
	}
	checkBlobs(t, s, want)
	for d, content := range contents {
		checkContent(t, s, d, content)
	}
}

// writers is the number of goroutines commitConcurrently starts.
const writers = 10

// commitConcurrently has writers goroutines write content(i) and then commit
// together, as closely as the scheduler allows.
func commitConcurrently(t *testing.T, s blob.Store, content func(i int) []byte) {
	ctx := t.Context()
	var written, done sync.WaitGroup
	start := make(chan struct{})
	written.Add(writers)
	for i := range writers {
		done.Go(func() {
			b := content(i)
			w, err := s.Create(ctx, 0)
			if err != nil {
				written.Done()
				t.Errorf("writer %d: Create: %v", i, err)
				return
			}
			for len(b) > 0 {
				n := min(len(b), 1000+i)
				if _, err := w.Write(b[:n]); err != nil {
					t.Errorf("writer %d: Write: %v", i, err)
				}
				b = b[n:]
			}
			written.Done()
			<-start
			if _, err := w.Commit(ctx, blob.DigestOf(content(i))); err != nil {
				t.Errorf("writer %d: Commit: %v", i, err)
			}
		})
	}
	written.Wait()
	close(start)
	done.Wait()
}

func testLarge(t *testing.T, s blob.Store) {
	ctx := t.Context()
	const size = 20 << 20
	content := pseudoRandom(5, size)
	want := blob.DigestOf(content)
	w := create(t, s, size)
	for b := content; len(b) > 0; {
		n := min(len(b), 4093) // odd, so writes straddle any block size
		write(t, w, b[:n])
		b = b[n:]
	}
	if w.Size() != size || w.Digest() != want {
		t.Fatalf("writer: got %d bytes %s, want %d bytes %s", w.Size(), w.Digest(), size, want)
	}
	info, err := w.Commit(ctx, want)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkInfo(t, "Commit", info, want, size)

	r := open(t, s, want)
	h := sha256.New()
	if n, err := io.Copy(h, r); err != nil || n != size {
		t.Fatalf("read: %d bytes, %v; want %d bytes", n, err, size)
	}
	if got := blob.Digest(hex.EncodeToString(h.Sum(nil))); got != want {
		t.Errorf("read bytes hash to %s, want %s", got, want)
	}
	const at = size/2 + 12345
	if _, err := r.Seek(at, io.SeekStart); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	got := make([]byte, 100000)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("read at %d: %v", at, err)
	}
	if !bytes.Equal(got, content[at:at+len(got)]) {
		t.Errorf("range at %d differs", at)
	}
}
