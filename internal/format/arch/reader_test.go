package arch_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/arch/archtest"
)

// realProgram finds a program a test needs. When it is missing the test
// is skipped, unless PACKYARD_REQUIRE_REAL=1 makes that a failure.
func realProgram(t *testing.T, name string) string {
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

// mustBuild builds s.
func mustBuild(t testing.TB, s archtest.Spec) []byte {
	t.Helper()
	b, err := archtest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readChecked reads b with ReadPackage and checks the digests, the size
// and that all of b was read.
func readChecked(t *testing.T, b []byte) *arch.Pkg {
	t.Helper()
	r := bytes.NewReader(b)
	p, err := arch.ReadPackage(r)
	if err != nil {
		t.Fatalf("ReadPackage: %v", err)
	}
	if r.Len() != 0 {
		t.Errorf("ReadPackage left %d bytes unread", r.Len())
	}
	m, s := md5.Sum(b), sha256.Sum256(b)
	if p.MD5 != hex.EncodeToString(m[:]) || p.SHA256 != hex.EncodeToString(s[:]) {
		t.Errorf("digests %s %s do not match the file's", p.MD5, p.SHA256)
	}
	if p.Size != int64(len(b)) {
		t.Errorf("Size = %d, want %d", p.Size, len(b))
	}
	return p
}

// specFiles is the Files list a package built from s must have.
func specFiles(s archtest.Spec) []string {
	set := map[string]bool{}
	for _, f := range s.Files {
		p := strings.TrimPrefix(f.Path, "/")
		if f.Dir {
			p += "/"
		}
		set[strings.ReplaceAll(p, `\`, `\\`)] = true
		for d := filepath.Dir(strings.TrimSuffix(p, "/")); d != "."; d = filepath.Dir(d) {
			set[d+"/"] = true
		}
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func TestReadPackageCompressions(t *testing.T) {
	for _, comp := range []string{"zst", "xz", "gz", ""} {
		t.Run("compression="+comp, func(t *testing.T) {
			s := archtest.Corpus(3, 1)[2]
			s.Compression = comp
			p := readChecked(t, mustBuild(t, s))
			if want := cmpOr(comp, "zst"); p.Compression != want {
				t.Errorf("Compression = %q, want %q", p.Compression, want)
			}
			want, err := arch.ParsePkgInfo(s.PkgInfo())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Info, want) {
				t.Errorf("Info = %+v\nwant %+v", p.Info, want)
			}
			if !slices.Equal(p.Files, specFiles(s)) {
				t.Errorf("Files = %q\nwant %q", p.Files, specFiles(s))
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestReadPackageCorpus(t *testing.T) {
	for _, s := range archtest.Corpus(30, 3) {
		p := readChecked(t, mustBuild(t, s))
		if p.Info.PkgName != s.Name || p.Info.PkgVer != s.Version || p.Info.Arch != s.Arch {
			t.Errorf("%s: read %s %s %s", s.Name, p.Info.PkgName, p.Info.PkgVer, p.Info.Arch)
		}
		if !slices.Equal(p.Files, specFiles(s)) {
			t.Errorf("%s: Files = %q\nwant %q", s.Name, p.Files, specFiles(s))
		}
	}
}

// TestReadPackageShortReads reads through readers that return little at
// a time or data together with io.EOF.
func TestReadPackageShortReads(t *testing.T) {
	for _, comp := range []string{"zst", "xz", "gz"} {
		s := archtest.Corpus(1, 5)[0]
		s.Compression = comp
		b := mustBuild(t, s)
		for name, r := range map[string]io.Reader{
			"one-byte": iotest.OneByteReader(bytes.NewReader(b)),
			"half":     iotest.HalfReader(bytes.NewReader(b)),
			"data-err": iotest.DataErrReader(bytes.NewReader(b)),
		} {
			p, err := arch.ReadPackage(r)
			if err != nil {
				t.Fatalf("%s %s: %v", comp, name, err)
			}
			if p.Size != int64(len(b)) {
				t.Errorf("%s %s: Size %d, want %d", comp, name, p.Size, len(b))
			}
		}
	}
}

// rawTar returns a tar archive of the given headers (bodies for regular
// files from bodies by name), ending properly.
func rawTar(t *testing.T, hdrs []tar.Header, bodies map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		h.Size = int64(len(bodies[h.Name]))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(bodies[h.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReadPackageLayouts checks archives pacman accepts though makepkg
// does not write them this way: metadata files in any order, hidden
// files, directories without a trailing slash, duplicates, hard links,
// FIFOs, pax global headers, several zstd frames (and skippable ones),
// xz streams and gzip members.
func TestReadPackageLayouts(t *testing.T) {
	s := archtest.Corpus(1, 9)[0]
	info := s.PkgInfo()
	bodies := map[string][]byte{".PKGINFO": info, ".BUILDINFO": []byte("format = 2\n"), ".MTREE": []byte("x"),
		".INSTALL": []byte("post_install() { :; }\n"), ".hidden": []byte("x"), "usr/bin/a": []byte("a"), `usr/bin/a\b`: []byte("x")}
	reg := func(name string) tar.Header { return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644} }
	hdrs := []tar.Header{
		reg(".BUILDINFO"), reg(".MTREE"), reg(".PKGINFO"), reg(".INSTALL"), reg(".hidden"),
		{Typeflag: tar.TypeDir, Name: ".dotdir/", Mode: 0o755},
		{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "x"}},
		{Typeflag: tar.TypeDir, Name: "usr", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "usr/bin/", Mode: 0o755},
		reg("usr/bin/a"), reg("usr/bin/a"), reg(`usr/bin/a\b`),
		{Typeflag: tar.TypeLink, Name: "usr/bin/b", Linkname: "usr/bin/a"},
		{Typeflag: tar.TypeSymlink, Name: "usr/bin/c", Linkname: "../../etc/passwd"},
		{Typeflag: tar.TypeFifo, Name: "usr/bin/fifo", Mode: 0o644},
	}
	tb := rawTar(t, hdrs, bodies)
	want := []string{"usr/", "usr/bin/", "usr/bin/a", `usr/bin/a\\b`, "usr/bin/b", "usr/bin/c", "usr/bin/fifo"}
	half := len(tb) / 2
	for _, comp := range []string{"zst", "xz", "gz"} {
		one, err := archtest.Compress(comp, tb)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := archtest.Compress(comp, tb[:half])
		second, _ := archtest.Compress(comp, tb[half:])
		cases := map[string][]byte{"one": one, "concatenated": append(first, second...)}
		if comp == "zst" {
			// A skippable frame (RFC 8878, 3.1.2) before and between.
			skip := []byte{0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
			cases["skippable"] = slices.Concat(skip, first, skip, second)
		}
		for name, b := range cases {
			p := readChecked(t, b)
			if !slices.Equal(p.Files, want) {
				t.Errorf("%s %s: Files = %q, want %q", comp, name, p.Files, want)
			}
			if p.Info.PkgName != s.Name {
				t.Errorf("%s %s: pkgname %q", comp, name, p.Info.PkgName)
			}
		}
	}
}

// malformedCases returns the malformed cases of a corpus package in the
// given compression.
func malformedCases(comp string) []archtest.Case {
	valid := archtest.Corpus(1, 1)[0]
	valid.Compression = comp
	return archtest.Malformed(valid)
}

func TestMalformed(t *testing.T) {
	for _, comp := range []string{"zst", "xz", "gz"} {
		for _, c := range malformedCases(comp) {
			t.Run(comp+"/"+c.Name, func(t *testing.T) {
				p, err := arch.ReadPackage(bytes.NewReader(c.Data))
				if err == nil {
					t.Fatalf("ReadPackage accepted it: %+v", p.Info)
				}
				want, other := format.ErrInvalidPackage, format.ErrPackageTooLarge
				if c.TooLarge {
					want, other = other, want
				}
				if !errors.Is(err, want) || errors.Is(err, other) {
					t.Fatalf("error %q: want one that wraps %v only", err, want)
				}
				if !strings.HasPrefix(err.Error(), "arch: ") || len(err.Error()) < 20 {
					t.Errorf("unhelpful message %q", err)
				}
				t.Log(err)
			})
		}
	}
}

// TestReadMakepkg reads packages the real makepkg built (with .BUILDINFO
// and .MTREE), in each compression.
func TestReadMakepkg(t *testing.T) {
	realProgram(t, "makepkg")
	realProgram(t, "fakeroot")
	if os.Geteuid() == 0 {
		realProgram(t, "runuser")
	}
	dir, err := os.MkdirTemp("", "arch-makepkg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for i, s := range archtest.Corpus(6, 31) {
		s.Compression = []string{"zst", "xz", "gz"}[i%3]
		path, err := archtest.BuildMakepkg(dir, s)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p := readChecked(t, b)
		if p.Compression != s.Compression {
			t.Errorf("%s: Compression %q, want %q", s.Name, p.Compression, s.Compression)
		}
		want, err := arch.ParsePkgInfo(s.PkgInfo())
		if err != nil {
			t.Fatal(err)
		}
		want.Extra = p.Info.Extra // makepkg 6.0 writes no xdata
		if !reflect.DeepEqual(p.Info, want) {
			t.Errorf("%s: Info = %+v\nwant %+v", s.Name, p.Info, want)
		}
		if !slices.Equal(p.Files, specFiles(s)) {
			t.Errorf("%s: Files = %q\nwant %q", s.Name, p.Files, specFiles(s))
		}
	}
}

// TestMalformedMessages checks that errors say what is wrong.
func TestMalformedMessages(t *testing.T) {
	want := map[string]string{
		"empty":                       `arch: empty file, not a package`,
		"not-compressed":              `arch: an uncompressed tar archive; packages are accepted compressed with zstd, xz or gzip`,
		"bzip2":                       `compressed with bzip2 (.pkg.tar.bz2)`,
		"truncated-magic":             `ends inside the xz magic`,
		"not-a-tar":                   `the xz stream does not hold a tar archive`,
		"truncated-compression":       `arch: file ends inside the xz stream`,
		"trailing-garbage":            `arch: xz stream: xz: not an xz stream`,
		"corrupt-zst":                 `arch: zst stream: `,
		"truncated-tar":               `arch: the tar archive ends early, in or after entry "var/lib/`,
		"truncated-tar-pkginfo":       `the tar archive ends early, in or after entry ".PKGINFO"`,
		"tar-bad-checksum":            `tar archive, in or after entry ".PKGINFO": archive/tar: invalid tar header`,
		"missing-pkginfo":             `arch: no .PKGINFO entry`,
		"pkginfo-symlink":             `arch: .PKGINFO is a link to "/etc/passwd", not a regular file`,
		"pkginfo-directory":           `.PKGINFO is not a regular file`,
		"pkginfo-dotslash":            `entry "./.PKGINFO" is not a clean relative path`,
		"two-pkginfo":                 `arch: a second .PKGINFO entry`,
		"pkginfo-no-pkgname":          `arch: .PKGINFO: no pkgname`,
		"pkginfo-bad-pkgver":          `arch: .PKGINFO: line 6: pkgver "1.0": no pkgrel`,
		"pkginfo-bad-epoch":           `pkgver "a:1.0-1": epoch "a" is not a number`,
		"pkginfo-size-not-a-number":   `.PKGINFO: line 11: size "12k" is not a number of bytes`,
		"pkginfo-invalid-utf8":        `.PKGINFO: line 7: invalid UTF-8`,
		"pkginfo-nul":                 `.PKGINFO: line 7: control character 0x00`,
		"pkginfo-crlf":                `.PKGINFO: line 1 ends with CRLF`,
		"pkginfo-line-without-equals": `.PKGINFO: line 3: "this line has no equals sign" is not "key = value"`,
		"pkginfo-duplicate-pkgname":   `.PKGINFO: line 4: pkgname given twice (first on line 3)`,
		"pkginfo-bad-pkgname":         `pkgname "Foo": contains 'F'`,
		"pkginfo-bad-arch":            `arch "x86-64": not an architecture`,
		"entry-dotdot":                `arch: entry "../etc/passwd" escapes the package`,
		"entry-absolute":              `arch: entry "/etc/passwd" is an absolute path`,
		"entry-newline":               `name holds control character U+000A`,
		"entry-unsupported-type":      `entry "usr/bin/contiguous" has unsupported type '7'`,
		"zstd-bomb":                   `arch: the zst stream decompresses to more than`,
		"xz-bomb":                     `arch: the xz stream decompresses to more than`,
		"gzip-bomb":                   `arch: the gz stream decompresses to more than`,
		"pkginfo-too-large":           `bytes exceeds 1048576 bytes`,
		"too-many-entries":            `arch: more than 500000 entries`,
		"path-too-long":               `arch: entry name of 4225 bytes`,
		"zstd-window-too-large":       `zstd frame with a window larger than 128 MiB`,
		"xz-dictionary-too-large":     `an xz block needs a dictionary of 4095 MiB; at most 128 MiB are supported`,
	}
	seen := map[string]bool{}
	for _, c := range malformedCases("xz") {
		w, ok := want[c.Name]
		if !ok {
			continue
		}
		seen[c.Name] = true
		_, err := arch.ReadPackage(bytes.NewReader(c.Data))
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
	for _, comp := range []string{"zst", "xz", "gz"} {
		s := archtest.Corpus(1, 4)[0]
		s.Compression = comp
		b := mustBuild(t, s)
		for _, at := range []int{0, 1, 3, 8, 40, 100, len(b) / 2, len(b) - 10, len(b) - 1, len(b)} {
			r := io.MultiReader(bytes.NewReader(b[:at]), iotest.ErrReader(errLimit))
			_, err := arch.ReadPackage(r)
			if !errors.Is(err, errLimit) || errors.Is(err, format.ErrInvalidPackage) || errors.Is(err, format.ErrPackageTooLarge) {
				t.Errorf("%s: error at offset %d gave %v", comp, at, err)
			}
		}
	}
}

// TestBombsBounded checks that the decompression bombs are refused fast
// and in little memory.
func TestBombsBounded(t *testing.T) {
	n := 0
	for _, c := range malformedCases("zst") {
		if !strings.HasSuffix(c.Name, "-bomb") && c.Name != "too-many-entries" {
			continue
		}
		n++
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := arch.ReadPackage(bytes.NewReader(c.Data))
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, format.ErrPackageTooLarge) {
			t.Fatalf("%s: %v", c.Name, err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		limit := uint64(32 << 20)
		if c.Name == "too-many-entries" {
			// Mostly garbage: archive/tar allocates a header and its
			// strings per entry (about 500 bytes); what stays is the
			// file list of 500,000 names.
			limit = 400 << 20
		}
		if alloc > limit {
			t.Errorf("%s: allocated %d MiB", c.Name, alloc>>20)
		}
		if elapsed > 5*time.Second {
			t.Errorf("%s: took %v", c.Name, elapsed)
		}
		t.Logf("%s: %d KiB in, %v, %d MiB allocated: %v", c.Name, len(c.Data)>>10, elapsed.Round(time.Millisecond), alloc>>20, err)
	}
	if n != 4 {
		t.Errorf("%d bomb cases, want 4", n)
	}
}

// TestExpansionBound checks that a real package compressing more than
// MaxExpansion times is accepted up to ExpansionSlack and refused past
// it.
func TestExpansionBound(t *testing.T) {
	base := archtest.Corpus(1, 2)[0]
	for _, tc := range []struct {
		size     int
		tooLarge bool
	}{{arch.ExpansionSlack / 2, false}, {arch.ExpansionSlack * 2, true}} {
		s := base
		s.Files = append(slices.Clone(base.Files), archtest.File{Path: "usr/share/zeros", Body: make([]byte, tc.size)})
		_, err := arch.ReadPackage(bytes.NewReader(mustBuild(t, s)))
		if tc.tooLarge != errors.Is(err, format.ErrPackageTooLarge) || !tc.tooLarge && err != nil {
			t.Errorf("%d MiB of zeros: %v", tc.size>>20, err)
		}
	}
}

// TestFilesMatchRepoAdd checks Files against the files entries repo-add
// writes for the same packages, read from the .files.tar.gz it creates.
func TestFilesMatchRepoAdd(t *testing.T) {
	repoAdd := realProgram(t, "repo-add")
	dir := t.TempDir()
	want := map[string][]string{}
	var paths []string
	for i, s := range archtest.Corpus(12, 21) {
		if i == 0 {
			// Names bsdtar lists as they are in a UTF-8 locale, and
			// hidden files and metadata it leaves out.
			s.Files = append(s.Files, archtest.File{Path: "usr/share/doc/" + s.Name + "/LISEZ-MOI-é.txt", Body: []byte("x")},
				archtest.File{Path: "usr/share/" + s.Name + "/.hidden", Body: []byte("x")})
		}
		b := mustBuild(t, s)
		p := readChecked(t, b)
		want[s.Name+"-"+s.Version+"/files"] = p.Files
		path := filepath.Join(dir, archtest.FileName(s))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	db := filepath.Join(dir, "repo", "test.db.tar.gz")
	os.Mkdir(filepath.Dir(db), 0o755)
	cmd := exec.Command(repoAdd, append([]string{"-q", db}, paths...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("repo-add: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "repo", "test.files.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	seen := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, "/files") {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[h.Name]
		if !ok {
			t.Errorf("repo-add wrote %s", h.Name)
			continue
		}
		seen++
		if got := "%FILES%\n" + strings.Join(w, "\n") + "\n"; got != string(body) {
			t.Errorf("%s: repo-add wrote\n%s\nReadPackage listed\n%s", h.Name, body, got)
		}
	}
	if seen != len(want) {
		t.Errorf("repo-add wrote %d files entries, want %d", seen, len(want))
	}
}

func FuzzReadPackage(f *testing.F) {
	for i, s := range archtest.Corpus(3, 1) {
		s.Compression = []string{"zst", "xz", "gz"}[i]
		s.Files = s.Files[:3]
		f.Add(mustBuild(f, s))
		for _, c := range archtest.Malformed(s) {
			if len(c.Data) < 16<<10 {
				f.Add(c.Data)
			}
		}
	}
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		metrics.Read(allocs)
		before := allocs[0].Value.Uint64()
		p, err := arch.ReadPackage(r)
		metrics.Read(allocs)
		// The largest legitimate use: a zstd window of MaxWindowSize, or
		// xz dictionaries of MaxWindowSize plus MaxExpansion times the
		// input.
		if n := allocs[0].Value.Uint64() - before; n > arch.MaxWindowSize+uint64(arch.MaxExpansion*len(b))+64<<20 {
			t.Fatalf("ReadPackage allocated %d MiB", n>>20)
		}
		if err != nil {
			if !errors.Is(err, format.ErrInvalidPackage) && !errors.Is(err, format.ErrPackageTooLarge) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if r.Len() != 0 || p.Size != int64(len(b)) {
			t.Fatalf("read %d of %d bytes", p.Size, len(b))
		}
		if _, err := arch.ParsePkgInfo([]byte(strings.Join([]string{"pkgname = " + p.Info.PkgName, "pkgver = " + p.Info.PkgVer,
			"arch = " + p.Info.Arch, "size = 0"}, "\n"))); err != nil {
			t.Fatalf("accepted .PKGINFO does not parse again: %v", err)
		}
		if !slices.IsSorted(p.Files) || len(slices.Compact(slices.Clone(p.Files))) != len(p.Files) {
			t.Fatalf("Files not sorted and unique: %q", p.Files)
		}
		for _, name := range p.Files {
			if name == "" || name[0] == '.' || name[0] == '/' || slices.Contains(strings.Split(name, "/"), "..") {
				t.Fatalf("Files holds %q", name)
			}
		}
	})
}

// BenchmarkReadPackage reads a package holding 16 MiB of random data:
// the cost is decompressing and hashing it.
func BenchmarkReadPackage(b *testing.B) {
	for _, comp := range []string{"zst", "xz", "gz"} {
		b.Run(comp, func(b *testing.B) {
			s := archtest.Corpus(1, 1)[0]
			s.Compression = comp
			body := make([]byte, 16<<20)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			s.Files = append(s.Files, archtest.File{Path: "usr/share/big", Body: body})
			pkg := mustBuild(b, s)
			b.SetBytes(int64(len(pkg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := arch.ReadPackage(bytes.NewReader(pkg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
