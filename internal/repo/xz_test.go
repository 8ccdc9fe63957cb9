package repo

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// An xz output is one stream of many blocks, readable by single-stream
// readers (liblzma as APT uses it), and an append re-encodes one block.
func TestXzOutputIsOneStream(t *testing.T) {
	entry := func(id int) *format.Entry {
		return &format.Entry{ID: int64(id), Path: fmt.Sprintf("p/%05d", id),
			Fragments: map[string][]byte{"idx": []byte(fmt.Sprintf("Package: p%d\nDescription: %s\n\n", id, strings.Repeat("y", id%70)))}}
	}
	var entries []*format.Entry
	for i := 1; i <= 3000; i++ {
		entries = append(entries, entry(i))
	}
	blobs, err := fsblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, hf := range []struct {
		name           string
		header, footer []byte
	}{{"no header", nil, nil}, {"header and footer", []byte("HEAD\n"), []byte("FOOT\n")}} {
		t.Run(hf.name, func(t *testing.T) {
			st := format.Stream{Name: "x-" + hf.name, Fragment: "idx", Header: func(int) []byte { return hf.header }, Footer: hf.footer,
				Encodings: []format.Encoding{format.Raw, format.Xz}, LegacyHashes: true}
			a := newAssembler(blobs, nil)
			check := func(what string) {
				t.Helper()
				a.encoded = 0
				b, err := a.build(context.Background(), st, entries)
				if err != nil {
					t.Fatal(err)
				}
				var want bytes.Buffer
				want.Write(hf.header)
				for _, e := range entries {
					want.Write(e.Fragments["idx"])
				}
				want.Write(hf.footer)
				file := readParts(t, blobs, b.Encoded[format.Xz])
				if sum := sha256.Sum256(file); hex.EncodeToString(sum[:]) != b.Encoded[format.Xz].SHA256 || int64(len(file)) != b.Encoded[format.Xz].Size {
					t.Fatalf("%s: digest or size of the xz file is wrong", what)
				}
				if md := md5.Sum(file); hex.EncodeToString(md[:]) != b.Encoded[format.Xz].MD5 {
					t.Fatalf("%s: MD5 of the xz file is wrong", what)
				}
				if s1 := sha1.Sum(file); hex.EncodeToString(s1[:]) != b.Encoded[format.Xz].SHA1 {
					t.Fatalf("%s: SHA-1 of the xz file is wrong", what)
				}
				// ulikunitz's reader in single-stream mode.
				r, err := xz.ReaderConfig{SingleStream: true}.NewReader(bytes.NewReader(file))
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, want.Bytes()) {
					t.Fatalf("%s: single-stream decode = %d bytes, %v; want %d bytes", what, len(got), err, want.Len())
				}
				realXz(t, file, want.Bytes())
			}
			check("first")
			entries = append(entries, entry(len(entries)+1))
			check("append")
			// One chunk per stored output (plain and xz).
			if a.encoded != 2 {
				t.Fatalf("append encoded %d chunks, want 2 (one plain, one xz block)", a.encoded)
			}
			entries = entries[:len(entries)-1]
		})
	}
	// Empty: a stream with no block.
	a := newAssembler(blobs, nil)
	b, err := a.build(context.Background(), format.Stream{Name: "empty", Fragment: "idx", Header: func(int) []byte { return nil },
		Encodings: []format.Encoding{format.Xz}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	realXz(t, readParts(t, blobs, b.Encoded[format.Xz]), nil)
}

// realXz checks a file with xz(1) and APT's own decompressor, when present.
func realXz(t *testing.T, file, want []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Packages.xz")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{"xz", "-dc", p}, {"/usr/lib/apt/apt-helper", "cat-file", p}} {
		if _, err := exec.LookPath(argv[0]); err != nil {
			if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
				t.Fatalf("%s is required (PACKYARD_REQUIRE_REAL=1)", argv[0])
			}
			continue
		}
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil || !bytes.Equal(out, want) {
			t.Fatalf("%v: %d bytes, %v; want %d bytes", argv, len(out), err, len(want))
		}
	}
}

// TestPrewarmedChunksArePublished: chunks compressed ahead (prewarm) are
// the ones a publish takes instead of compressing them, the outputs are
// byte for byte a fresh assembler's, nothing reaches the blob store
// before the publish, and a chunk whose entries changed since it was
// warmed is compressed again, not taken.
func TestPrewarmedChunksArePublished(t *testing.T) {
	ctx := context.Background()
	entry := func(id int) *format.Entry {
		return &format.Entry{ID: int64(id), Path: fmt.Sprintf("p/%05d", id), Fragments: map[string][]byte{"idx": []byte(fmt.Sprintf("Package: p%d\nVersion: %s\n\n", id, strings.Repeat("1", id%40)))}}
	}
	var entries []*format.Entry
	for i := 1; i <= 3000; i++ {
		entries = append(entries, entry(i))
	}
	st := format.Stream{Name: "Packages", Fragment: "idx", Encodings: []format.Encoding{format.Raw, format.Gzip, format.Xz},
		Header: func(int) []byte { return nil }, LegacyHashes: true}
	blobs, err := fsblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newAssembler(blobs, nil)
	warmAll := func() {
		chunks := chunkEntries(entries)
		for _, c := range chunks[:len(chunks)-1] {
			for _, enc := range []format.Encoding{format.Gzip, format.Xz} {
				if err := a.warm(ctx, st.Fragment, enc, chunkKey(st.Fragment, c), c); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	warmAll()
	n := 0
	if err := blobs.Walk(ctx, func(blob.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("prewarming stored %d blobs (%v)", n, err)
	}
	chunks := len(chunkEntries(entries))
	if chunks < 10 {
		t.Fatalf("only %d chunks", chunks)
	}
	build := func(a *assembler) format.Built {
		t.Helper()
		a.encoded, a.taken = 0, 0
		b, err := a.build(ctx, st, entries)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got := build(a)
	// Raw chunks are assembled, not warmed; of the compressed ones only
	// the last of each encoding is left to compress.
	if a.taken != 2*(chunks-1) || a.encoded != chunks+2 {
		t.Fatalf("publish took %d prewarmed chunks and encoded %d, want %d and %d", a.taken, a.encoded, 2*(chunks-1), chunks+2)
	}
	a.sweep()
	want := build(newAssembler(blobs, nil))
	for _, enc := range st.Encodings {
		if got.Encoded[enc].SHA256 != want.Encoded[enc].SHA256 || got.Encoded[enc].Size != want.Encoded[enc].Size {
			t.Fatalf("%s: prewarmed build differs from a fresh one", encName(enc))
		}
		if d := blob.DigestOf(readParts(t, blobs, got.Encoded[enc])); string(d) != got.Encoded[enc].SHA256 {
			t.Fatalf("%s: stored parts hash to %s, not %s", encName(enc), d, got.Encoded[enc].SHA256)
		}
	}

	// Warm again, then drop a package from the middle: its chunk's key
	// changes, so that chunk is compressed by the publish.
	a = newAssembler(blobs, nil)
	warmAll()
	entries = append(entries[:1500], entries[1501:]...)
	got = build(a)
	if a.taken != 2*(chunks-2) || a.encoded != chunks+4 {
		t.Fatalf("after a change: took %d, encoded %d, want %d and %d", a.taken, a.encoded, 2*(chunks-2), chunks+4)
	}
	want = build(newAssembler(blobs, nil))
	if got.Encoded[format.Xz].SHA256 != want.Encoded[format.Xz].SHA256 || got.Encoded[format.Gzip].SHA256 != want.Encoded[format.Gzip].SHA256 {
		t.Fatal("after a change: prewarmed build differs from a fresh one")
	}
	// The warm chunks the publish did not take are dropped with it.
	a.sweep()
	if len(a.warmed) != 0 || a.warmBytes != 0 {
		t.Fatalf("sweep left %d warm chunks (%d bytes)", len(a.warmed), a.warmBytes)
	}
}

// TestTentativeEntries: prewarming sees the state with the changes past
// it applied (the last change of a package wins), in ID order, and the
// state itself is left as it is.
func TestTentativeEntries(t *testing.T) {
	p := &publisher{state: &pubState{}}
	for _, id := range []int64{2, 4, 6} {
		p.state.sorted = append(p.state.sorted, &format.Entry{ID: id})
	}
	pkg := func(id int64, removed bool) meta.PackageChange {
		return meta.PackageChange{Package: meta.Package{ID: id}, Removed: removed}
	}
	got := p.tentative([]meta.PackageChange{pkg(5, false), pkg(4, true), pkg(1, false), pkg(7, false), pkg(7, true), pkg(3, false)})
	var ids []int64
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[1 2 3 5 6]" {
		t.Fatalf("tentative entries %v, want [1 2 3 5 6]", ids)
	}
	if len(p.state.sorted) != 3 || p.state.sorted[1].ID != 4 {
		t.Fatal("tentative changed the state")
	}
}
