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

	"github.com/packyard/packyard/internal/blob/fsblob"
	"github.com/packyard/packyard/internal/format"
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
