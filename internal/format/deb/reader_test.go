package deb_test

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/deb/debtest"
)

// realTool finds a program a test needs. When it is missing the test is
// skipped, unless PACKYARD_REQUIRE_REAL=1 makes that a failure.
func realTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("%s not found and PACKYARD_REQUIRE_REAL=1: %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

// renderControl writes p back as a control file, by the rule Field
// documents.
func renderControl(p *deb.Paragraph) string {
	var b strings.Builder
	for _, f := range p.Fields {
		if f.Value == "" || strings.HasPrefix(f.Value, "\n") {
			b.WriteString(f.Name + ":" + f.Value + "\n")
		} else {
			b.WriteString(f.Name + ": " + f.Value + "\n")
		}
	}
	return b.String()
}

// checkRead reads b with ReadDeb and checks the digests, the size, that
// all of b was read and that the control file is want.
func checkRead(t *testing.T, b []byte, want []byte) *deb.Deb {
	t.Helper()
	r := bytes.NewReader(b)
	d, err := deb.ReadDeb(r)
	if err != nil {
		t.Fatalf("ReadDeb: %v", err)
	}
	if r.Len() != 0 {
		t.Errorf("ReadDeb left %d bytes unread", r.Len())
	}
	m, s256 := md5.Sum(b), sha256.Sum256(b)
	if d.MD5 != hex.EncodeToString(m[:]) || d.SHA256 != hex.EncodeToString(s256[:]) {
		t.Errorf("digests %s %s do not match the file's", d.MD5, d.SHA256)
	}
	if d.Size != int64(len(b)) {
		t.Errorf("Size = %d, want %d", d.Size, len(b))
	}
	if want != nil {
		if got := renderControl(d.Control); got != string(want) {
			t.Errorf("control file read back as\n%s\nwant\n%s", got, want)
		}
	}
	return d
}

func TestReadDebCompressions(t *testing.T) {
	for _, comp := range []string{"gz", "xz", "zst", "none", ""} {
		t.Run("compression="+comp, func(t *testing.T) {
			s := debtest.Corpus(2, 1)[1]
			s.Compression = comp
			b, err := debtest.Build(s)
			if err != nil {
				t.Fatal(err)
			}
			d := checkRead(t, b, s.Control())
			if d.Control.Get("package") != s.Package || d.Control.Get("Version") != s.Version {
				t.Errorf("Package %q Version %q", d.Control.Get("package"), d.Control.Get("Version"))
			}
		})
	}
}

func TestReadDebCorpus(t *testing.T) {
	for _, s := range debtest.Corpus(40, 3) {
		b, err := debtest.Build(s)
		if err != nil {
			t.Fatalf("%s: %v", s.Package, err)
		}
		checkRead(t, b, s.Control())
	}
}

// TestReadDebShortReads reads through readers that return little at a
// time or data together with io.EOF.
func TestReadDebShortReads(t *testing.T) {
	for _, comp := range []string{"gz", "xz", "zst", "none"} {
		s := debtest.Corpus(1, 5)[0]
		s.Compression = comp
		b, err := debtest.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]io.Reader{
			"one-byte": iotest.OneByteReader(bytes.NewReader(b)),
			"half":     iotest.HalfReader(bytes.NewReader(b)),
			"data-err": iotest.DataErrReader(bytes.NewReader(b)),
		} {
			d, err := deb.ReadDeb(r)
			if err != nil {
				t.Fatalf("%s %s: %v", comp, name, err)
			}
			if d.Size != int64(len(b)) {
				t.Errorf("%s %s: Size %d, want %d", comp, name, d.Size, len(b))
			}
		}
	}
}

// TestReadDebLayouts checks archives dpkg accepts though dpkg-deb does
// not write them.
func TestReadDebLayouts(t *testing.T) {
	s := debtest.Corpus(1, 9)[0]
	s.Compression = "none"
	ms, err := debtest.Members(s)
	if err != nil {
		t.Fatal(err)
	}
	bin, ctl, data := ms[0], ms[1], ms[2]
	extra := debtest.Member{Name: "_extra", Data: []byte("ignored")}
	for name, members := range map[string][]debtest.Member{
		"underscore-members": {bin, extra, ctl, extra, data},
		"trailing-members":   {bin, ctl, data, {Name: "_gpgorigin", Data: []byte("signature")}, {Name: "anything", Data: []byte("x")}},
		"gnu-names":          {{Name: "debian-binary/", Data: bin.Data}, {Name: "control.tar/", Data: ctl.Data}, {Name: "data.tar/", Data: data.Data}},
		"data-bz2":           {bin, ctl, {Name: "data.tar.bz2", Data: []byte("BZh9 not decompressed")}},
		"data-lzma":          {bin, ctl, {Name: "data.tar.lzma", Data: []byte("not decompressed")}},
		"debian-binary-2.1":  {{Name: "debian-binary", Data: []byte("2.1\nfuture line\n")}, ctl, data},
	} {
		t.Run(name, func(t *testing.T) {
			checkRead(t, debtest.Archive(members...), s.Control())
		})
	}
}

func TestReadDebDpkg(t *testing.T) {
	realTool(t, "dpkg-deb")
	for _, comp := range []string{"gz", "xz", "zst", "none"} {
		for _, s := range debtest.Corpus(6, 11) {
			s.Compression = comp
			p, err := debtest.BuildDpkg(t.TempDir(), s)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			checkRead(t, b, s.Control())
		}
	}
}

// TestReadDebDpkgLevels reads control members dpkg-deb compressed at its
// highest levels, whose xz dictionary (64 MiB) and zstd window (8 MiB)
// are declared as such, with a control.tar of nearly MaxControlTarSize.
func TestReadDebDpkgLevels(t *testing.T) {
	tool := realTool(t, "dpkg-deb")
	s := debtest.Corpus(1, 2)[0]
	dir := t.TempDir()
	root := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), s.Control(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Incompressible text, so that the control.tar is large compressed
	// too and streaming compressors declare their full window.
	rng := rand.New(rand.NewPCG(1, 1))
	var sums bytes.Buffer
	for sums.Len() < 1<<20 {
		var sum [16]byte
		for i := range sum {
			sum[i] = byte(rng.Uint32())
		}
		sums.WriteString(hex.EncodeToString(sum[:]) + "  usr/share/doc/x/file\n")
	}
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "md5sums"), sums.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, z := range []string{"-Zgzip -z9", "-Zxz -z9", "-Zxz -z0", "-Zzstd -z19", "-Zzstd -z1"} {
		out := filepath.Join(dir, "out.deb")
		args := append([]string{"--root-owner-group"}, strings.Fields(z)...)
		cmd := exec.Command(tool, append(args, "--build", root, out)...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb %s: %v\n%s", z, err, msg)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("control.tar.zst ")); i > 0 && b[i+60+4]&0x20 != 0 {
			t.Errorf("%s: a single-segment zstd frame, not one that declares its window", z)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		checkRead(t, b, s.Control())
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
			t.Errorf("%s: ReadDeb allocated %d MiB", z, alloc>>20)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, comp := range []string{"gz", "xz", "zst", "none"} {
		valid := debtest.Corpus(1, 1)[0]
		valid.Compression = comp
		for _, c := range debtest.Malformed(valid) {
			t.Run(comp+"/"+c.Name, func(t *testing.T) {
				d, err := deb.ReadDeb(bytes.NewReader(c.Data))
				if err == nil {
					t.Fatalf("ReadDeb accepted it: %+v", d.Control)
				}
				want, other := format.ErrInvalidPackage, format.ErrPackageTooLarge
				if c.TooLarge {
					want, other = other, want
				}
				if !errors.Is(err, want) || errors.Is(err, other) {
					t.Fatalf("error %q: want one that wraps %v only", err, want)
				}
				if !strings.HasPrefix(err.Error(), "deb: ") || len(err.Error()) < 12 {
					t.Errorf("unhelpful message %q", err)
				}
			})
		}
	}
}

// TestMalformedMessages checks that errors say what is wrong.
func TestMalformedMessages(t *testing.T) {
	valid := debtest.Corpus(1, 1)[0]
	valid.Compression = "xz"
	want := map[string]string{
		"control-dotdot":              `control.tar.xz: entry "../control" escapes the archive`,
		"control-absolute-entry":      `control.tar.xz: entry "/etc/passwd" is an absolute path`,
		"invalid-version":             `deb: control: field Version: invalid version "1..:": epoch "1.." is not a number`,
		"line-without-colon":          `deb: control: line 2: no colon`,
		"duplicate-field":             `deb: control: line 2: duplicate field package (first on line 1)`,
		"crlf":                        `control: line 1 ends with CRLF`,
		"invalid-architecture":        `field Architecture: invalid architecture "amd 64"`,
		"control-symlink":             `control file "./control" is a link to "/etc/passwd"`,
		"control-bz2":                 `dpkg does not accept .bz2 compression for control.tar`,
		"missing-data":                `no data.tar member`,
		"debian-binary-3.0":           `unsupported package format version 3.0`,
		"data-before-control":         `member "data.tar.xz" comes before control.tar`,
		"ar-size-not-a-number":        `size field "12a4      " is not a number`,
		"ar-size-past-end":            `file ends inside archive member "data.tar.xz"`,
		"bomb":                        `control.tar.gz: decompresses to more than 4194304 bytes`,
		"control-too-large":           `control file of 1049`,
		"control-member-too-large":    `member "control.tar.xz" of 4194306 bytes exceeds 4194304 bytes`,
		"control-corrupt-xz":          `control.tar.xz: xz:`,
		"invalid-utf8":                `control: line 4: invalid UTF-8`,
		"unknown-member-before-data":  `unexpected member "extra" before data.tar`,
		"control-unknown-compression": `member "control.tar.lz4": unknown compression`,
	}
	seen := map[string]bool{}
	for _, c := range debtest.Malformed(valid) {
		w, ok := want[c.Name]
		if !ok {
			continue
		}
		seen[c.Name] = true
		_, err := deb.ReadDeb(bytes.NewReader(c.Data))
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %v, want it to contain %q", c.Name, err, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no malformed case %q", name)
		}
	}
}

// TestReadErrorPassesThrough checks that an error of the underlying
// reader comes back as it is, wherever it happens, and is not taken for
// an invalid package.
func TestReadErrorPassesThrough(t *testing.T) {
	errLimit := errors.New("upload over the size limit")
	for _, comp := range []string{"gz", "xz", "zst", "none"} {
		s := debtest.Corpus(1, 4)[0]
		s.Compression = comp
		b, err := debtest.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range []int{0, 3, 8, 40, 70, 72, 140, 200, 300, len(b) / 2, len(b) - 61, len(b) - 1} {
			r := io.MultiReader(bytes.NewReader(b[:at]), iotest.ErrReader(errLimit))
			_, err := deb.ReadDeb(r)
			if !errors.Is(err, errLimit) || errors.Is(err, format.ErrInvalidPackage) || errors.Is(err, format.ErrPackageTooLarge) {
				t.Errorf("%s: error at offset %d gave %v", comp, at, err)
			}
		}
	}
}

// compressMember compresses b as a control.tar member.
func compressMember(t *testing.T, comp string, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	var w io.WriteCloser
	var err error
	switch comp {
	case "none":
		return b
	case "gz":
		w = gzip.NewWriter(&out)
	case "xz":
		w, err = xz.NewWriter(&out)
	case "zst":
		w, err = zstd.NewWriter(&out)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestControlTarTooLarge checks that a real control.tar over
// MaxControlTarSize (a large md5sums, with far-reaching matches) is
// refused as too large whatever its compression.
func TestControlTarTooLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var sums bytes.Buffer
	for i := 0; sums.Len() <= deb.MaxControlTarSize; i++ {
		fmt.Fprintf(&sums, "%016x%016x  usr/share/doc/pkg/file-%d\n", rng.Uint64(), rng.Uint64(), i)
	}
	s := debtest.Corpus(1, 8)[0]
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct {
		name string
		body []byte
	}{{"./control", s.Control()}, {"./md5sums", sums.Bytes()}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	tw.Close()
	for _, comp := range []string{"gz", "xz", "zst", "none"} {
		s.Compression = comp
		ms, err := debtest.Members(s)
		if err != nil {
			t.Fatal(err)
		}
		ms[1].Data = compressMember(t, comp, tb.Bytes())
		_, err = deb.ReadDeb(bytes.NewReader(debtest.Archive(ms...)))
		if !errors.Is(err, format.ErrPackageTooLarge) {
			t.Errorf("%s (%d bytes): %v", comp, len(ms[1].Data), err)
		}
	}
}

// TestBombBounded checks that the decompression bomb is refused fast and
// in little memory.
func TestBombBounded(t *testing.T) {
	var bomb []byte
	for _, c := range debtest.Malformed(debtest.Corpus(1, 1)[0]) {
		if c.Name == "bomb" {
			bomb = c.Data
		}
	}
	if bomb == nil {
		t.Fatal("no bomb case")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := deb.ReadDeb(bytes.NewReader(bomb))
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, format.ErrPackageTooLarge) {
		t.Fatalf("ReadDeb(bomb) = %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("ReadDeb(bomb) allocated %d bytes", alloc)
	}
	if elapsed > 2*time.Second {
		t.Errorf("ReadDeb(bomb) took %v", elapsed)
	}
}

// zstdRawFrame returns a zstd frame that declares a window of
// 1<<windowLog bytes and holds data in raw blocks (RFC 8878, 3.1.1).
func zstdRawFrame(data []byte, windowLog int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(windowLog-10) << 3}
	for {
		n := min(len(data), 128<<10)
		last := 0
		if n == len(data) {
			last = 1
		}
		h := n<<3 | last
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
		b = append(b, data[:n]...)
		data = data[n:]
		if last == 1 {
			return b
		}
	}
}

// TestZstdWindow checks the zstd window bound with frames that declare
// their window, as a streaming compressor writes them.
func TestZstdWindow(t *testing.T) {
	s := debtest.Corpus(1, 6)[0]
	s.Compression = "none"
	ms, err := debtest.Members(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		windowLog int
		tooLarge  bool
	}{{20, false}, {23, false}, {24, true}, {27, true}, {41, true}} {
		z := zstdRawFrame(ms[1].Data, tc.windowLog)
		b := debtest.Archive(ms[0], debtest.Member{Name: "control.tar.zst", Data: z}, ms[2])
		_, err = deb.ReadDeb(bytes.NewReader(b))
		if tc.tooLarge != errors.Is(err, format.ErrPackageTooLarge) || !tc.tooLarge && err != nil {
			t.Errorf("window 1<<%d: %v", tc.windowLog, err)
		}
	}
}

func FuzzReadDeb(f *testing.F) {
	for i, s := range debtest.Corpus(4, 1) {
		s.Compression = []string{"gz", "xz", "zst", "none"}[i]
		b, err := debtest.Build(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for _, c := range debtest.Malformed(s) {
			if len(c.Data) < 64<<10 {
				f.Add(c.Data)
			}
		}
	}
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkStoredAgrees(t, "input", b)
		r := bytes.NewReader(b)
		metrics.Read(allocs)
		before := allocs[0].Value.Uint64()
		d, err := deb.ReadDeb(r)
		metrics.Read(allocs)
		// The largest legitimate use: many xz blocks without sizes, each
		// with a dictionary of MaxControlTarSize, one after the other.
		if n := allocs[0].Value.Uint64() - before; n > 80<<20 {
			t.Fatalf("ReadDeb allocated %d MiB", n>>20)
		}
		if err != nil {
			if !errors.Is(err, format.ErrInvalidPackage) && !errors.Is(err, format.ErrPackageTooLarge) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if r.Len() != 0 || d.Size != int64(len(b)) {
			t.Fatalf("read %d of %d bytes", d.Size, len(b))
		}
		if err := deb.CheckBinary(d.Control); err != nil {
			t.Fatalf("accepted control fails CheckBinary: %v", err)
		}
	})
}

// TestReadDebStoredAgrees checks that ReadDebStored, which seeks over
// what it need not read, accepts and refuses exactly what ReadDeb does,
// with the same messages: every corpus package, every layout and every
// malformed file.
func TestReadDebStoredAgrees(t *testing.T) {
	var files [][]byte
	for i, s := range debtest.Corpus(40, 3) {
		s.Compression = []string{"gz", "xz", "zst", "none"}[i%4]
		b, err := debtest.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
		for _, c := range debtest.Malformed(s) {
			files = append(files, c.Data)
		}
	}
	accepted := 0
	for i, b := range files {
		checkStoredAgrees(t, fmt.Sprintf("file %d", i), b)
		if _, err := deb.ReadDeb(bytes.NewReader(b)); err == nil {
			accepted++
		}
	}
	if accepted < 40 || accepted == len(files) {
		t.Fatalf("%d of %d files accepted: the comparison needs both kinds", accepted, len(files))
	}
}

// checkStoredAgrees compares ReadDebStored with ReadDeb on b.
func checkStoredAgrees(t *testing.T, name string, b []byte) {
	t.Helper()
	want, werr := deb.ReadDeb(bytes.NewReader(b))
	got, gerr := deb.ReadDebStored(bytes.NewReader(b), int64(len(b)))
	switch {
	case werr != nil || gerr != nil:
		if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
			t.Fatalf("%s: ReadDeb: %v; ReadDebStored: %v", name, werr, gerr)
		}
	case got.Size != want.Size || !reflect.DeepEqual(got.Control, want.Control):
		t.Fatalf("%s: ReadDebStored read size %d, control %+v; ReadDeb %d, %+v", name, got.Size, got.Control, want.Size, want.Control)
	case got.MD5 != "" || got.SHA256 != "":
		t.Fatalf("%s: ReadDebStored computed digests", name)
	}
}

// BenchmarkReadDeb reads a package with a 16 MiB data member: the cost
// is hashing the file.
func BenchmarkReadDeb(b *testing.B) {
	s := debtest.Corpus(1, 1)[0]
	s.Compression = "none"
	body := make([]byte, 16<<20)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	s.Files = append(s.Files, debtest.File{Path: "/usr/share/big", Body: body})
	pkg, err := debtest.Build(s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pkg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := deb.ReadDeb(bytes.NewReader(pkg)); err != nil {
			b.Fatal(err)
		}
	}
}
