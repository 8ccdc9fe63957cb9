// Package blobtest is the conformance suite that every blob.Store backend
// runs from its own tests:
//
//	func TestStore(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) blob.Store { … return an empty store … })
//	}
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/blob"
)

// Run runs the conformance suite against the stores newStore returns. Each
// subtest calls newStore once and expects an empty store, which Run closes
// when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"Roundtrip", testRoundtrip},
		{"WriterDigestAndSize", testWriterDigestAndSize},
		{"Commit", testCommit},
		{"Cancel", testCancel},
		{"CommitExisting", testCommitExisting},
		{"Limit", testLimit},
		{"Missing", testMissing},
		{"InvalidDigest", testInvalidDigest},
		{"Delete", testDelete},
		{"SeekAndRanges", testSeekAndRanges},
		{"Walk", testWalk},
		{"WalkStops", testWalkStops},
		{"ConcurrentSameContent", testConcurrentSameContent},
		{"ConcurrentDifferentContent", testConcurrentDifferentContent},
		{"Large", testLarge},
		{"EndTwice", testEndTwice},
		{"Empty", testEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func testRoundtrip(t *testing.T, s blob.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"Empty", nil},
		{"OneByte", []byte{0}},
		{"Text", []byte("hello, packyard\n")},
		{"64KiB", pseudoRandom(1, 64<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := blob.DigestOf(tc.content)
			info, err := blob.Put(ctx, s, tc.content)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			checkInfo(t, "Put", info, want, len(tc.content))
			info, err = s.Stat(ctx, want)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			checkInfo(t, "Stat", info, want, len(tc.content))
			if info.ModTime.IsZero() {
				t.Errorf("Stat: zero ModTime")
			}
			checkContent(t, s, want, tc.content)
		})
	}
}

func testWriterDigestAndSize(t *testing.T, s blob.Store) {
	ctx := t.Context()
	w, err := s.Create(ctx, 0)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	checkWriter(t, w, nil)
	var written []byte
	for _, part := range []string{"a", "", "bc", strings.Repeat("d", 5000)} {
		write(t, w, []byte(part))
		written = append(written, part...)
		checkWriter(t, w, written)
	}
	info, err := w.Commit(ctx, "")
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkInfo(t, "Commit", info, blob.DigestOf(written), len(written))
	checkContent(t, s, info.Digest, written)
}

func testCommit(t *testing.T, s blob.Store) {
	content := []byte("commit me")
	right := blob.DigestOf(content)
	for _, tc := range []struct {
		name    string
		want    blob.Digest
		wantErr error
	}{
		{"NoExpectedDigest", "", nil},
		{"RightDigest", right, nil},
		{"WrongDigest", blob.DigestOf([]byte("something else")), blob.ErrDigestMismatch},
		{"NotADigest", "sha256:" + right, blob.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			w := create(t, s, 0)
			write(t, w, content)
			info, err := w.Commit(ctx, tc.want)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Commit: got %v, want %v", err, tc.wantErr)
				}
				checkNotFound(t, s, right)
				checkBlobs(t, s, nil)
				return
			}
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			checkInfo(t, "Commit", info, right, len(content))
			checkContent(t, s, right, content)
			if err := s.Delete(ctx, right); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		})
	}
}

func testCancel(t *testing.T, s blob.Store) {
	content := []byte("cancelled")
	w := create(t, s, 0)
	write(t, w, content)
	if err := w.Cancel(t.Context()); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	checkNotFound(t, s, blob.DigestOf(content))
	checkBlobs(t, s, nil)
}

func testCommitExisting(t *testing.T, s blob.Store) {
	ctx := t.Context()
	content := []byte("stored twice")
	d := put(t, s, content)
	before, err := s.Stat(ctx, d)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	for _, want := range []blob.Digest{"", d} {
		w := create(t, s, 0)
		write(t, w, content)
		info, err := w.Commit(ctx, want)
		if err != nil {
			t.Fatalf("second Commit(%q): %v", want, err)
		}
		checkInfo(t, "second Commit", info, d, len(content))
	}
	after, err := s.Stat(ctx, d)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if !after.ModTime.Equal(before.ModTime) {
		t.Errorf("ModTime changed from %v to %v: the blob was rewritten", before.ModTime, after.ModTime)
	}
	checkContent(t, s, d, content)
	checkBlobs(t, s, map[blob.Digest]int64{d: int64(len(content))})
}

func testLimit(t *testing.T, s blob.Store) {
	for _, tc := range []struct {
		name   string
		limit  int64
		writes []int // sizes of successive writes
		tooBig int   // index of the write that must fail; -1: none
	}{
		{"NoLimit", 0, []int{1000, 1000}, -1},
		{"UpToLimit", 10, []int{4, 6}, -1},
		{"OneWritePastLimit", 10, []int{11}, 0},
		{"SecondWritePastLimit", 10, []int{6, 5}, 1},
		{"EmptyWriteAtLimit", 10, []int{10, 0}, -1},
		{"WriteAfterLimit", 10, []int{10, 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			w := create(t, s, tc.limit)
			var written []byte
			for i, n := range tc.writes {
				p := pseudoRandom(uint64(i), n)
				_, err := w.Write(p)
				if i == tc.tooBig {
					if !errors.Is(err, blob.ErrTooLarge) {
						t.Fatalf("write %d of %d bytes: got %v, want ErrTooLarge", i, n, err)
					}
					break
				}
				if err != nil {
					t.Fatalf("write %d of %d bytes: %v", i, n, err)
				}
				written = append(written, p...)
			}
			d := blob.DigestOf(written)
			if tc.tooBig < 0 {
				info, err := w.Commit(ctx, d)
				if err != nil {
					t.Fatalf("Commit: %v", err)
				}
				checkInfo(t, "Commit", info, d, len(written))
				if err := s.Delete(ctx, d); err != nil {
					t.Fatalf("Delete: %v", err)
				}
				return
			}
			// The bytes before the failed write must not become a blob.
			if _, err := w.Commit(ctx, ""); !errors.Is(err, blob.ErrTooLarge) {
				t.Errorf("Commit after ErrTooLarge: got %v, want ErrTooLarge", err)
			}
			checkNotFound(t, s, d)
			checkBlobs(t, s, nil)
		})
	}
}

func testMissing(t *testing.T, s blob.Store) {
	missing := blob.DigestOf([]byte("never stored"))
	put(t, s, []byte("stored"))
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			if err := op.fn(t.Context(), s, missing); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("%s of a missing blob: got %v, want ErrNotFound", op.name, err)
			}
		})
	}
}

func testInvalidDigest(t *testing.T, s blob.Store) {
	put(t, s, []byte("stored"))
	valid := string(blob.DigestOf([]byte("stored")))
	for _, d := range []string{
		"",
		"abc",
		strings.ToUpper(valid),
		"sha256:" + valid,
		valid + "0",
		"../" + valid[3:],
		valid[:62] + "/x",
	} {
		for _, op := range ops {
			if err := op.fn(t.Context(), s, blob.Digest(d)); !errors.Is(err, blob.ErrInvalidDigest) {
				t.Errorf("%s(%q): got %v, want ErrInvalidDigest", op.name, d, err)
			}
		}
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := t.Context()
	keep := put(t, s, []byte("keep"))
	content := []byte("delete me")
	d := put(t, s, content)
	if err := s.Delete(ctx, d); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkNotFound(t, s, d)
	if err := s.Delete(ctx, d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
	checkBlobs(t, s, map[blob.Digest]int64{keep: 4})
	checkContent(t, s, keep, []byte("keep"))

	// A deleted blob can be stored again.
	put(t, s, content)
	checkContent(t, s, d, content)
}

func testSeekAndRanges(t *testing.T, s blob.Store) {
	content := pseudoRandom(2, 1000)
	d := put(t, s, content)
	for _, tc := range []struct {
		name   string
		seeks  [][2]int64 // (offset, whence) pairs, applied in order
		pos    int64      // position after the seeks
		n      int64      // bytes to read
		wantAt int        // offset in content of the bytes expected
		want   int        // number of bytes expected
	}{
		{"Start", nil, 0, 10, 0, 10},
		{"FromStart", [][2]int64{{100, io.SeekStart}}, 100, 50, 100, 50},
		{"FromEnd", [][2]int64{{-10, io.SeekEnd}}, 990, 10, 990, 10},
		{"FromCurrent", [][2]int64{{200, io.SeekStart}, {-50, io.SeekCurrent}}, 150, 25, 150, 25},
		{"Back", [][2]int64{{900, io.SeekStart}, {5, io.SeekStart}}, 5, 5, 5, 5},
		{"PastEndOfRange", [][2]int64{{995, io.SeekStart}}, 995, 100, 995, 5},
		{"AtEnd", [][2]int64{{0, io.SeekEnd}}, 1000, 10, 1000, 0},
		{"Whole", [][2]int64{{0, io.SeekStart}}, 0, 2000, 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Open(t.Context(), d)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			pos := int64(0)
			for _, sk := range tc.seeks {
				if pos, err = r.Seek(sk[0], int(sk[1])); err != nil {
					t.Fatalf("Seek(%d, %d): %v", sk[0], sk[1], err)
				}
			}
			if pos != tc.pos {
				t.Errorf("position after seeks: got %d, want %d", pos, tc.pos)
			}
			got, err := io.ReadAll(io.LimitReader(r, tc.n))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if want := content[tc.wantAt : tc.wantAt+tc.want]; !bytes.Equal(got, want) {
				t.Errorf("read %d bytes at %d: got %d bytes that differ from the %d expected",
					tc.n, tc.pos, len(got), len(want))
			}
		})
	}

	// Two readers of one blob have their own positions.
	r1 := open(t, s, d)
	r2 := open(t, s, d)
	if _, err := r1.Seek(500, io.SeekStart); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	b1, b2 := make([]byte, 10), make([]byte, 10)
	if _, err := io.ReadFull(r1, b1); err != nil {
		t.Fatalf("read: %v", err)
	}
	if _, err := io.ReadFull(r2, b2); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(b1, content[500:510]) || !bytes.Equal(b2, content[:10]) {
		t.Errorf("two readers of one blob share their position")
	}
}

func testWalk(t *testing.T, s blob.Store) {
	ctx := t.Context()
	checkBlobs(t, s, nil)
	want := map[blob.Digest]int64{}
	for i := range 20 {
		content := pseudoRandom(uint64(i), i*37)
		want[put(t, s, content)] = int64(len(content))
	}
	put(t, s, pseudoRandom(2, 2*37)) // already stored
	deleted := put(t, s, []byte("deleted"))
	if err := s.Delete(ctx, deleted); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	cancelled := create(t, s, 0)
	write(t, cancelled, []byte("cancelled"))
	if err := cancelled.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	mismatched := create(t, s, 0)
	write(t, mismatched, []byte("mismatched"))
	if _, err := mismatched.Commit(ctx, blob.DigestOf(nil)); !errors.Is(err, blob.ErrDigestMismatch) {
		t.Fatalf("Commit: got %v, want ErrDigestMismatch", err)
	}
	inProgress := create(t, s, 0)
	write(t, inProgress, []byte("in progress"))
	checkBlobs(t, s, want)
	if err := inProgress.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
}

func testWalkStops(t *testing.T, s blob.Store) {
	for i := range 10 {
		put(t, s, []byte(fmt.Sprint(i)))
	}
	for _, stopAt := range []int{1, 5, 10} {
		errStop := fmt.Errorf("stop at %d", stopAt)
		calls := 0
		err := s.Walk(t.Context(), func(blob.Info) error {
			calls++
			if calls == stopAt {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Errorf("Walk: got %v, want the error fn returned", err)
		}
		if calls != stopAt {
			t.Errorf("fn called %d times after returning an error at call %d", calls, stopAt)
		}
	}
}

func testEndTwice(t *testing.T, s blob.Store) {
	type end func(ctx context.Context, w blob.Writer) error
	commit := func(ctx context.Context, w blob.Writer) error {
		_, err := w.Commit(ctx, "")
		return err
	}
	cancel := func(ctx context.Context, w blob.Writer) error { return w.Cancel(ctx) }
	for _, tc := range []struct {
		name          string
		first, second end
		stored        bool
	}{
		{"CommitCommit", commit, commit, true},
		{"CommitCancel", commit, cancel, true},
		{"CancelCommit", cancel, commit, false},
		{"CancelCancel", cancel, cancel, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			content := []byte("ended twice: " + tc.name)
			d := blob.DigestOf(content)
			w := create(t, s, 0)
			write(t, w, content)
			if err := tc.first(ctx, w); err != nil {
				t.Fatalf("first end: %v", err)
			}
			if err := tc.second(ctx, w); !errors.Is(err, blob.ErrClosed) {
				t.Errorf("second end: got %v, want ErrClosed", err)
			}
			if _, err := w.Write([]byte("more")); !errors.Is(err, blob.ErrClosed) {
				t.Errorf("Write after end: got %v, want ErrClosed", err)
			}
			if tc.stored {
				checkContent(t, s, d, content)
			} else {
				checkNotFound(t, s, d)
			}
		})
	}
}

func testEmpty(t *testing.T, s blob.Store) {
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	w := create(t, s, 1)
	checkWriter(t, w, nil)
	info, err := w.Commit(t.Context(), emptySHA256)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	checkInfo(t, "Commit", info, emptySHA256, 0)
	checkContent(t, s, emptySHA256, nil)
	checkBlobs(t, s, map[blob.Digest]int64{emptySHA256: 0})
}
