package xzread

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

// maxControlTar is a bound as a .deb's control.tar has.
const maxControlTar = 4 << 20

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
	return io.ReadAll(NewReader(bytes.NewReader(b), Config{MaxOut: maxOut}))
}

func TestXZ(t *testing.T) {
	data := xzInput(300 << 10)
	one := xzCompress(t, data, xz.WriterConfig{})
	for name, tc := range map[string]struct {
		in   []byte
		want []byte
	}{
		"default":               {one, data},
		"empty":                 {xzCompress(t, nil, xz.WriterConfig{}), nil},
		"blocks":                {xzCompress(t, data, xz.WriterConfig{BlockSize: 32 << 10}), data},
		"check-none":            {xzCompress(t, data, xz.WriterConfig{CheckSum: xz.None}), data},
		"check-crc32":           {xzCompress(t, data, xz.WriterConfig{CheckSum: xz.CRC32}), data},
		"check-sha256":          {xzCompress(t, data, xz.WriterConfig{CheckSum: xz.SHA256}), data},
		"small-dictionary":      {xzCompress(t, data, xz.WriterConfig{DictCap: 4096}), data},
		"concatenated":          {append(cloneBytes(one), one...), append(cloneBytes(data), data...)},
		"padding-between-after": {append(append(append(cloneBytes(one), 0, 0, 0, 0), one...), 0, 0, 0, 0, 0, 0, 0, 0), append(cloneBytes(data), data...)},
	} {
		got, err := xzDecompress(tc.in, 1<<20)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %d bytes, want %d", name, len(got), len(tc.want))
		}
	}
}

func cloneBytes(b []byte) []byte { return append([]byte(nil), b...) }

// setDictionary rewrites the dictionary size of the first block header of
// an xz stream written by github.com/ulikunitz/xz (one LZMA2 filter, no
// sizes) and fixes the header CRC32.
func setDictionary(t *testing.T, b []byte, prop byte) []byte {
	t.Helper()
	b = cloneBytes(b)
	h := b[12:]
	size := (int(h[0]) + 1) * 4
	if h[1] != 0 || h[2] != 0x21 || h[3] != 1 {
		t.Fatalf("unexpected block header % x", h[:size])
	}
	h[4] = prop
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return b
}

// TestXZDictionaryBounded checks that the dictionary a block header
// declares is not allocated as such.
func TestXZDictionaryBounded(t *testing.T) {
	data := xzInput(64 << 10)
	huge := setDictionary(t, xzCompress(t, data, xz.WriterConfig{}), 40) // 4 GiB
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := xzDecompress(huge, maxControlTar)
	runtime.ReadMemStats(&after)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12<<20 {
		t.Errorf("allocated %d MiB", alloc>>20)
	}
	if _, err := xzDecompress(setDictionary(t, huge, 41), maxControlTar); err == nil {
		t.Error("dictionary size 41 accepted")
	}
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
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("output over the bound: %v", err)
	}
	// Without a bound, and with a Reserve that counts blocks and their
	// dictionaries.
	b := xzCompress(t, data, xz.WriterConfig{BlockSize: 16 << 10, DictCap: 1 << 20})
	var dicts []int64
	got, err := io.ReadAll(NewReader(bytes.NewReader(b), Config{Reserve: func(d int64) error {
		dicts = append(dicts, d)
		return nil
	}}))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if len(dicts) != 13 {
		t.Errorf("Reserve called for %d blocks, want 13", len(dicts))
	}
	for _, d := range dicts {
		if d != 1<<20 {
			t.Errorf("dictionary of %d bytes, want the declared 1 MiB", d)
		}
	}
	// MaxOut caps a dictionary; an error of Reserve comes back as it is.
	errNo := errors.New("no dictionary")
	_, err = io.ReadAll(NewReader(bytes.NewReader(b), Config{MaxOut: 300 << 10, Reserve: func(d int64) error {
		if d > 300<<10+1 {
			t.Errorf("dictionary of %d bytes with MaxOut 300 KiB", d)
		}
		return errNo
	}}))
	if err != errNo {
		t.Errorf("Reserve's error came back as %v", err)
	}
}

// TestXZCorrupt checks that a flipped byte anywhere is caught (or, where
// the format cannot tell, gives the same output) and that every
// truncation is an error.
func TestXZCorrupt(t *testing.T) {
	data := xzInput(3000)
	for _, c := range []xz.WriterConfig{{}, {CheckSum: xz.CRC32}, {BlockSize: 1024}} {
		good := xzCompress(t, data, c)
		for i := range good {
			b := cloneBytes(good)
			b[i] ^= 0x21
			got, err := xzDecompress(b, 1<<20)
			if err == nil && !bytes.Equal(got, data) {
				t.Errorf("%+v: flipping byte %d of %d gave other data without error", c, i, len(good))
			}
		}
		for n := range len(good) {
			if _, err := xzDecompress(good[:n], 1<<20); err == nil {
				t.Errorf("%+v: truncated to %d of %d bytes: no error", c, n, len(good))
			}
		}
	}
	for _, b := range [][]byte{nil, []byte("not xz at all"), {0, 0, 0, 0}} {
		if _, err := xzDecompress(b, 1<<20); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

// TestXZTool decodes what the xz program writes with its presets, checks
// and block sizes.
func TestXZTool(t *testing.T) {
	tool, err := exec.LookPath("xz")
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("xz not found and PACKYARD_REQUIRE_REAL=1: %v", err)
		}
		t.Skipf("xz not found: %v", err)
	}
	data := xzInput(500 << 10)
	for _, args := range [][]string{{"-0"}, {"-6"}, {"-9e"}, {"--check=sha256"}, {"--check=none"}, {"--check=crc32"}, {"--block-size=65536"}, {"-T2", "--block-size=100000"}} {
		cmd := exec.Command(tool, append([]string{"-c"}, args...)...)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz %v: %v", args, err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		got, err := xzDecompress(out, maxControlTar)
		runtime.ReadMemStats(&after)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("xz %v: got %d bytes, %v", args, len(got), err)
		}
		t.Logf("xz %v: allocated %d KiB", args, (after.TotalAlloc-before.TotalAlloc)>>10)
	}
}

func FuzzReader(f *testing.F) {
	data := xzInput(5000)
	for _, c := range []xz.WriterConfig{{}, {CheckSum: xz.None}, {BlockSize: 1024, CheckSum: xz.None}, {DictCap: 4096}} {
		f.Add(xzCompress(f, data, c))
		f.Add(xzCompress(f, data[:100], c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var dicts int64
		out, err := io.ReadAll(NewReader(bytes.NewReader(b), Config{MaxOut: 1 << 20, Reserve: func(d int64) error {
			if d > 1<<20+1 {
				t.Fatalf("dictionary of %d bytes with MaxOut 1 MiB", d)
			}
			dicts += d
			return nil
		}}))
		if err == nil && len(out) > 1<<20 {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}

// TestXZEmptyRead checks that a Read with an empty buffer returns at once,
// in the middle of a block too, where the LZMA2 decoder gives 0, nil.
func TestXZEmptyRead(t *testing.T) {
	data := xzInput(100 << 10)
	r := NewReader(bytes.NewReader(xzCompress(t, data, xz.WriterConfig{})), Config{MaxOut: maxControlTar})
	var got bytes.Buffer
	buf := make([]byte, 1000)
	for {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if n, err := r.Read(nil); n != 0 || (err != nil && err != io.EOF) {
				t.Errorf("Read(nil) = %d, %v", n, err)
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Read(nil) did not return")
		}
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes, want the %d compressed", got.Len(), len(data))
	}
}

func TestDeclaredSize(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 300 << 10} {
		data := xzInput(n)
		b := xzCompress(t, data, xz.WriterConfig{})
		if got, ok := DeclaredSize(b); !ok || got != int64(n) {
			t.Errorf("%d bytes: DeclaredSize = %d %v", n, got, ok)
		}
		// Stream padding after the stream is allowed.
		if got, ok := DeclaredSize(append(append([]byte(nil), b...), 0, 0, 0, 0)); !ok || got != int64(n) {
			t.Errorf("%d bytes + padding: DeclaredSize = %d %v", n, got, ok)
		}
		// Two streams, a truncated one, or bytes in front: no answer.
		for name, bad := range map[string][]byte{
			"two streams": append(append([]byte(nil), b...), b...),
			"truncated":   b[:len(b)-1],
			"prefixed":    append([]byte{0xfd}, b...),
			"empty":       nil,
		} {
			if _, ok := DeclaredSize(bad); ok {
				t.Errorf("%d bytes, %s: DeclaredSize answered", n, name)
			}
		}
	}
}
