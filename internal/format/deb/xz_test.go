package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/internal/format"
)

// xzInput is compressible but not trivial data.
func xzInput(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"control ", "md5sums ", "usr/share/doc/", "0123456789abcdef ", "\n"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

func xzCompress(t testing.TB, data []byte, c xz.WriterConfig) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := c.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func xzDecompress(b []byte, maxOut int64) ([]byte, error) {
	return io.ReadAll(newXZReader(bytes.NewReader(b), maxOut))
}

// md5sumsLike returns n bytes of lines as an md5sums file holds, which
// compress with matches at short distances only.
func md5sumsLike(n int) []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "%016x%016x  usr/share/doc/pkg/file-%d\n", rng.Uint64(), rng.Uint64(), b.Len())
	}
	return b.Bytes()
}

func TestXZBounds(t *testing.T) {
	data := md5sumsLike(200 << 10)
	_, err := xzDecompress(xzCompress(t, data, xz.WriterConfig{}), 100<<10)
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, format.ErrPackageTooLarge) {
		t.Errorf("output over the bound: %v", err)
	}
	_, err = xzDecompress(xzCompress(t, data, xz.WriterConfig{BlockSize: 1 << 10}), 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("%d blocks: %v", 200, err)
	}
}

func FuzzXZ(f *testing.F) {
	data := xzInput(5000)
	for _, c := range []xz.WriterConfig{{}, {CheckSum: xz.None}, {BlockSize: 1024, CheckSum: xz.None}, {DictCap: 4096}} {
		f.Add(xzCompress(f, data, c))
		f.Add(xzCompress(f, data[:100], c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := xzDecompress(b, 1<<20)
		if err != nil {
			var de *debError
			if errors.As(err, &de) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(out) > 1<<20 {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}
