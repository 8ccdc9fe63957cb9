package blobtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/packyard/packyard/internal/blob"
)

// ops are the Store methods that look a blob up by digest.
var ops = []struct {
	name string
	fn   func(ctx context.Context, s blob.Store, d blob.Digest) error
}{
	{"Open", func(ctx context.Context, s blob.Store, d blob.Digest) error {
		r, err := s.Open(ctx, d)
		if err == nil {
			r.Close()
		}
		return err
	}},
	{"Stat", func(ctx context.Context, s blob.Store, d blob.Digest) error {
		_, err := s.Stat(ctx, d)
		return err
	}},
	{"Delete", func(ctx context.Context, s blob.Store, d blob.Digest) error {
		return s.Delete(ctx, d)
	}},
}

// pseudoRandom returns n bytes that depend only on seed.
func pseudoRandom(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func put(t *testing.T, s blob.Store, b []byte) blob.Digest {
	t.Helper()
	info, err := blob.Put(t.Context(), s, b)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return info.Digest
}

func create(t *testing.T, s blob.Store, limit int64) blob.Writer {
	t.Helper()
	w, err := s.Create(t.Context(), limit)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func write(t *testing.T, w blob.Writer, b []byte) {
	t.Helper()
	n, err := w.Write(b)
	if err != nil || n != len(b) {
		t.Fatalf("Write of %d bytes: wrote %d, %v", len(b), n, err)
	}
}

// open opens d and closes it when the test ends.
func open(t *testing.T, s blob.Store, d blob.Digest) blob.Reader {
	t.Helper()
	r, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func checkWriter(t *testing.T, w blob.Writer, written []byte) {
	t.Helper()
	if got := w.Size(); got != int64(len(written)) {
		t.Errorf("Size: got %d, want %d", got, len(written))
	}
	if got, want := w.Digest(), blob.DigestOf(written); got != want {
		t.Errorf("Digest after %d bytes: got %s, want %s", len(written), got, want)
	}
}

func checkInfo(t *testing.T, what string, info blob.Info, d blob.Digest, size int) {
	t.Helper()
	if info.Digest != d || info.Size != int64(size) {
		t.Errorf("%s: got %d bytes %s, want %d bytes %s", what, info.Size, info.Digest, size, d)
	}
}

func checkContent(t *testing.T, s blob.Store, d blob.Digest, want []byte) {
	t.Helper()
	got, err := blob.ReadAll(t.Context(), s, d)
	if err != nil {
		t.Fatalf("ReadAll(%s): %v", d, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ReadAll(%s): got %d bytes that differ from the %d stored", d, len(got), len(want))
	}
}

func checkNotFound(t *testing.T, s blob.Store, d blob.Digest) {
	t.Helper()
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(%s): got %v, want ErrNotFound", d, err)
	}
	if r, err := s.Open(t.Context(), d); !errors.Is(err, blob.ErrNotFound) {
		if err == nil {
			r.Close()
		}
		t.Errorf("Open(%s): got %v, want ErrNotFound", d, err)
	}
}

// checkBlobs checks that Walk lists exactly the blobs in want, with their
// sizes, each once, and that Stat agrees with it.
func checkBlobs(t *testing.T, s blob.Store, want map[blob.Digest]int64) {
	t.Helper()
	got := map[blob.Digest]blob.Info{}
	err := s.Walk(t.Context(), func(info blob.Info) error {
		if _, dup := got[info.Digest]; dup {
			t.Errorf("Walk: %s listed twice", info.Digest)
		}
		got[info.Digest] = info
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	for d, info := range got {
		size, ok := want[d]
		if !ok {
			t.Errorf("Walk: unexpected blob %s", d)
			continue
		}
		if info.Size != size {
			t.Errorf("Walk: %s has %d bytes, want %d", d, info.Size, size)
		}
		st, err := s.Stat(t.Context(), d)
		if err != nil {
			t.Errorf("Stat(%s) of a walked blob: %v", d, err)
		} else if st.Digest != info.Digest || st.Size != info.Size || !st.ModTime.Equal(info.ModTime) {
			t.Errorf("Stat(%s) = %+v, Walk gave %+v", d, st, info)
		}
	}
	for d := range want {
		if _, ok := got[d]; !ok {
			t.Errorf("Walk: missing blob %s", d)
		}
	}
}
