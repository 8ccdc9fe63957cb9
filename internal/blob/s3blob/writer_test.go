package s3blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/s3blob"
	"github.com/packyard/packyard/internal/testengine"
)

// TestNeverOverwritten checks that Commit does not upload bytes whose key
// exists, and that the conditional PUT it sends (single or multipart) is
// refused by the store when the key appeared after Commit looked it up.
func TestNeverOverwritten(t *testing.T) {
	for _, size := range []int{100, 12 << 20} {
		t.Run(sizeName(size), func(t *testing.T) {
			b := testengine.MinIO(t)
			cfg := config(t, b, "p")
			cfg.PartSize = 5 << 20
			s := open(t, cfg)
			content := pseudoRandom(1, size)
			d := put(t, s, content)
			key := "p/sha256/" + string(d[:2]) + "/" + string(d)
			rawPut(t, b, key, []byte("tampered"))
			before, err := s.Stat(t.Context(), d)
			if err != nil {
				t.Fatal(err)
			}

			if _, err := blob.Put(t.Context(), s, content); err != nil {
				t.Fatalf("Put of existing content: %v", err)
			}
			w := create(t, s, 0)
			write(t, w, content)
			if err := s3blob.Upload(t.Context(), w); !s3blob.IsExists(err) {
				t.Errorf("conditional upload over an existing key: got %v, want 412 Precondition Failed", err)
			}
			if err := w.Cancel(t.Context()); err != nil {
				t.Fatal(err)
			}

			if got := objects(t, b)[key]; got != "tampered" {
				t.Errorf("%s was rewritten: it holds %d bytes", key, len(got))
			}
			after, err := s.Stat(t.Context(), d)
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("Stat changed from %+v to %+v", before, after)
			}
			checkNoUploads(t, b)
		})
	}
}

func TestNothingLeftBehind(t *testing.T) {
	small := []byte("some bytes")
	spilled := pseudoRandom(2, 3<<20)   // past MemoryBuffer: in a temporary file
	multipart := pseudoRandom(3, 6<<20) // past PartSize
	for _, tc := range []struct {
		name    string
		content []byte
		end     func(t *testing.T, w blob.Writer) error
		stored  bool
	}{
		{"Cancel", small, cancel, false},
		{"CancelSpilled", spilled, cancel, false},
		{"MismatchSmall", small, mismatch, false},
		{"MismatchSpilled", spilled, mismatch, false},
		{"MismatchMultipart", multipart, mismatch, false},
		{"TooLarge", spilled, func(t *testing.T, w blob.Writer) error {
			if _, err := w.Write(make([]byte, 5<<20+1)); !errors.Is(err, blob.ErrTooLarge) {
				t.Errorf("Write: got %v, want ErrTooLarge", err)
			}
			return cancel(t, w)
		}, false},
		{"CommitSpilled", spilled, commit, true},
		{"CommitMultipart", multipart, commit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testengine.MinIO(t)
			cfg := config(t, b, "p")
			cfg.MemoryBuffer = 1 << 20
			cfg.PartSize = 5 << 20
			s := open(t, cfg)
			w := create(t, s, 8<<20)
			for c := tc.content; len(c) > 0; {
				n := min(len(c), 100_000)
				write(t, w, c[:n])
				c = c[n:]
			}
			// The temporary file is unlinked as soon as it is created.
			checkNoTemp(t, cfg.TempDir)
			if err := tc.end(t, w); err != nil {
				t.Fatal(err)
			}
			checkNoTemp(t, cfg.TempDir)
			checkNoUploads(t, b)
			want := map[string]string{}
			if tc.stored {
				d := blob.DigestOf(tc.content)
				want["p/sha256/"+string(d[:2])+"/"+string(d)] = string(tc.content)
			}
			if got := objects(t, b); !equalObjects(got, want) {
				t.Errorf("bucket holds %d objects %v, want %d", len(got), keys(got), len(want))
			}
		})
	}
}

// TestVerifiedInTransit checks that the store refuses bytes that differ from
// those the writer hashed: every PUT carries the SHA-256 of its body.
func TestVerifiedInTransit(t *testing.T) {
	for _, size := range []int{100, 3 << 20, 12 << 20} {
		t.Run(sizeName(size), func(t *testing.T) {
			b := testengine.MinIO(t)
			cfg := config(t, b, "")
			cfg.MemoryBuffer = 1 << 20
			cfg.PartSize = 5 << 20
			s := open(t, cfg)
			w := create(t, s, 0)
			write(t, w, pseudoRandom(6, size))
			if err := s3blob.Corrupt(w, int64(size)-7); err != nil {
				t.Fatal(err)
			}
			_, err := w.Commit(t.Context(), "")
			if err == nil || !strings.Contains(err.Error(), "x-amz-content-sha256") {
				t.Errorf("Commit of bytes changed after hashing: got %v, want a SHA-256 mismatch", err)
			}
			if errors.Is(err, blob.ErrUnavailable) {
				t.Errorf("Commit: %v wraps ErrUnavailable", err)
			}
			if got := objects(t, b); len(got) != 0 {
				t.Errorf("bucket holds %v", keys(got))
			}
			checkNoUploads(t, b)
		})
	}
}

// TestCommitCancelledMidUpload cancels Commits at various points of a
// multipart upload: each either stores the blob or leaves nothing behind.
func TestCommitCancelledMidUpload(t *testing.T) {
	b := testengine.MinIO(t)
	cfg := config(t, b, "")
	cfg.PartSize = 5 << 20
	s := open(t, cfg)
	content := pseudoRandom(7, 40<<20)
	d := blob.DigestOf(content)
	failed := 0
	for _, after := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		w := create(t, s, 0)
		write(t, w, content)
		ctx, cancel := context.WithTimeout(t.Context(), after)
		_, err := w.Commit(ctx, d)
		cancel()
		checkNoUploads(t, b)
		checkNoTemp(t, cfg.TempDir)
		if err == nil {
			if err := s.Delete(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			continue
		}
		failed++
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Commit cancelled after %v: got %v, want DeadlineExceeded", after, err)
		}
		if got := objects(t, b); len(got) != 0 {
			t.Errorf("Commit cancelled after %v left %v", after, keys(got))
		}
	}
	t.Logf("%d of 6 commits cancelled", failed)
}

func TestLargeMultipart(t *testing.T) {
	const size = 40 << 20
	content := pseudoRandom(4, size)
	d := blob.DigestOf(content)
	for _, tc := range []struct {
		partSize int64
		parts    int
	}{
		{0, 3}, // the default 16 MiB
		{5 << 20, 8},
	} {
		t.Run(sizeName(int(tc.partSize)), func(t *testing.T) {
			b := testengine.MinIO(t)
			cfg := config(t, b, "")
			cfg.PartSize = tc.partSize
			s := open(t, cfg)
			w := create(t, s, size)
			for c := content; len(c) > 0; {
				n := min(len(c), 65521) // odd, so writes straddle the parts
				write(t, w, c[:n])
				c = c[n:]
			}
			info, err := w.Commit(t.Context(), d)
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if info.Digest != d || info.Size != size {
				t.Errorf("Commit: %+v, want %d bytes %s", info, size, d)
			}
			oi, err := rawClient(t, b).StatObject(t.Context(), b.Bucket, "sha256/"+string(d[:2])+"/"+string(d), minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := "-" + string(rune('0'+tc.parts)); !strings.HasSuffix(oi.ETag, want) {
				t.Errorf("ETag %s: want a multipart upload of %d parts", oi.ETag, tc.parts)
			}

			r, err := s.Open(t.Context(), d)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			h := sha256.New()
			if n, err := io.Copy(h, r); err != nil || n != size {
				t.Fatalf("read: %d bytes, %v", n, err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != string(d) {
				t.Errorf("read bytes hash to %s, want %s", got, d)
			}
			ps := int64(16 << 20)
			if tc.partSize != 0 {
				ps = tc.partSize
			}
			for _, at := range []int64{ps - 1000, 0, ps, 2*ps + 12345, size - 10, 7} {
				if _, err := r.Seek(at, io.SeekStart); err != nil {
					t.Fatalf("Seek(%d): %v", at, err)
				}
				got := make([]byte, min(5000, size-at))
				if _, err := io.ReadFull(r, got); err != nil {
					t.Fatalf("read at %d: %v", at, err)
				}
				if !bytes.Equal(got, content[at:at+int64(len(got))]) {
					t.Errorf("%d bytes at %d differ", len(got), at)
				}
			}
			if _, err := r.Seek(0, io.SeekEnd); err != nil {
				t.Fatal(err)
			}
			if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
				t.Errorf("Read at the end: %d, %v; want 0, EOF", n, err)
			}
		})
	}
}

func cancel(t *testing.T, w blob.Writer) error { return w.Cancel(t.Context()) }

func commit(t *testing.T, w blob.Writer) error {
	_, err := w.Commit(t.Context(), w.Digest())
	return err
}

func mismatch(t *testing.T, w blob.Writer) error {
	if _, err := w.Commit(t.Context(), blob.DigestOf(nil)); !errors.Is(err, blob.ErrDigestMismatch) {
		t.Errorf("Commit: got %v, want ErrDigestMismatch", err)
	}
	return nil
}
