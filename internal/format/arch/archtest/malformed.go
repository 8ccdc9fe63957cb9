package archtest

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/packyard/packyard/internal/format/arch"
)

// Case is one malformed package.
type Case struct {
	Name string
	Data []byte
	// TooLarge is set when a reader must refuse Data as too large
	// (format.ErrPackageTooLarge) rather than invalid
	// (format.ErrInvalidPackage).
	TooLarge bool
}

// Malformed returns named broken packages derived from valid, which must
// build (it panics otherwise), in valid's compression unless the case is
// about another:
//
//   - not a package: empty, text, random bytes, an uncompressed tar,
//     bzip2, cut inside the magic;
//   - compression: not a tar inside, cut in the middle and just before
//     the end, trailing garbage, corrupt zstd, xz and gzip streams;
//   - tar: cut inside .PKGINFO and inside the last entry, a header with
//     a bad checksum;
//   - .PKGINFO missing, a symlink, a hard link, a directory, named
//     "./.PKGINFO", there twice, empty; without pkgname, pkgver, arch or
//     size; pkgver "1.0" (no pkgrel), a bad epoch or pkgrel, whitespace
//     in pkgver; pkgname "Foo" or "-foo"; arch "x86-64"; size "12k"; a
//     negative builddate; invalid UTF-8, a NUL byte, CRLF line ends, a
//     line without " = ", an invalid key, a duplicate pkgname, an empty
//     depend;
//   - entries "../etc/passwd", "/etc/passwd", "usr/../../etc/passwd",
//     "./usr/bin/x", "usr//bin/x", a name with a newline or invalid
//     UTF-8, a regular file whose name ends with '/', an entry of an
//     unsupported type (contiguous file);
//   - too large: zstd, xz and gzip bombs (under 150 KiB that inflate to
//     128 MiB to 1 GiB of zeros), a .PKGINFO over arch.MaxPkgInfoSize,
//     more than arch.MaxEntries entries (about 2.4 MiB), an entry name over
//     arch.MaxPathLen, a zstd frame declaring a 2 GiB window, an xz block
//     declaring a 4 GiB dictionary.
func Malformed(valid Spec) []Case {
	tarball, err := Tar(valid)
	if err != nil {
		panic(fmt.Sprintf("archtest: Malformed needs a valid spec: %v", err))
	}
	good := mustCompress(valid.compression(), tarball)
	info := valid.PkgInfo()
	entries, err := valid.entries(info)
	if err != nil {
		panic(err)
	}
	pkginfo, content := entries[0], entries[1:]
	comp := valid.compression()
	mtime := valid.buildDate()
	var cases []Case
	add := func(name string, b []byte) { cases = append(cases, Case{Name: name, Data: b}) }
	tooLarge := func(name string, b []byte) { cases = append(cases, Case{Name: name, Data: b, TooLarge: true}) }
	withEntries := func(es ...tarEntry) []byte { return mustCompress(comp, tarArchive(es, mtime)) }
	withPkgInfo := func(data []byte) []byte {
		return withEntries(append([]tarEntry{regular(".PKGINFO", 0o644, data)}, content...)...)
	}
	editPkgInfo := func(name string, f func(string) string) { add(name, withPkgInfo([]byte(f(string(info))))) }
	// setKey replaces the value of key, or removes its line when value
	// is "-".
	setKey := func(key, value string) func(string) string {
		return func(s string) string {
			lines := strings.Split(s, "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, key+" = ") {
					lines[i] = key + " = " + value
					if value == "-" {
						lines = slices.Delete(lines, i, i+1)
					}
					break
				}
			}
			return strings.Join(lines, "\n")
		}
	}
	insertLine := func(line string) func(string) string {
		return func(s string) string {
			first, rest, _ := strings.Cut(s, "pkgname = ")
			return first + line + "\npkgname = " + rest
		}
	}
	withEntry := func(e tarEntry) []byte { return withEntries(append([]tarEntry{pkginfo, e}, content...)...) }
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = 'R'

	// Not a package.
	add("empty", []byte{})
	add("text", []byte("This is not a pacman package.\n"))
	add("random-bytes", random)
	add("not-compressed", tarball)
	add("bzip2", append([]byte("BZh91AY&SY"), random[:100]...))
	add("truncated-magic", slices.Clone(good[:1]))

	// Compression.
	add("not-a-tar", mustCompress(comp, bytes.Repeat([]byte("not a tar archive\n"), 100)))
	add("truncated-compression", slices.Clone(good[:len(good)/2]))
	add("truncated-compression-end", slices.Clone(good[:len(good)-3]))
	add("trailing-garbage", append(slices.Clone(good), "garbage after the package\n"...))
	for _, c := range []string{"zst", "xz", "gz"} {
		z := mustCompress(c, tarball)
		z[len(z)/2] ^= 0x55
		z[len(z)-5] ^= 0x55
		add("corrupt-"+c, z)
	}

	// Tar.
	add("truncated-tar-pkginfo", mustCompress(comp, tarball[:512+10]))
	add("truncated-tar", mustCompress(comp, tarball[:len(tarball)-1024-300]))
	badSum := slices.Clone(tarball)
	badSum[512+(len(info)+511)/512*512] ^= 0x20 // the name of the entry after .PKGINFO
	add("tar-bad-checksum", mustCompress(comp, badSum))

	// .PKGINFO entries.
	add("missing-pkginfo", withEntries(content...))
	add("pkginfo-symlink", withEntries(append([]tarEntry{{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: ".PKGINFO", Linkname: "/etc/passwd", Mode: 0o777}}}, content...)...))
	add("pkginfo-hardlink", withEntries(append(slices.Clone(content), tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: ".PKGINFO", Linkname: content[len(content)-1].hdr.Name}})...))
	add("pkginfo-directory", withEntries(append([]tarEntry{directory(".PKGINFO/", 0o755)}, content...)...))
	add("pkginfo-dotslash", withEntries(append([]tarEntry{regular("./.PKGINFO", 0o644, info)}, content...)...))
	add("two-pkginfo", withEntries(append(append([]tarEntry{pkginfo}, content...), pkginfo)...))
	add("pkginfo-empty", withPkgInfo(nil))

	// .PKGINFO contents.
	editPkgInfo("pkginfo-no-pkgname", setKey("pkgname", "-"))
	editPkgInfo("pkginfo-no-pkgver", setKey("pkgver", "-"))
	editPkgInfo("pkginfo-no-arch", setKey("arch", "-"))
	editPkgInfo("pkginfo-no-size", setKey("size", "-"))
	editPkgInfo("pkginfo-bad-pkgver", setKey("pkgver", "1.0"))
	editPkgInfo("pkginfo-bad-epoch", setKey("pkgver", "a:1.0-1"))
	editPkgInfo("pkginfo-bad-pkgrel", setKey("pkgver", "1.0-1a"))
	editPkgInfo("pkginfo-pkgver-space", setKey("pkgver", "1.0 beta-1"))
	editPkgInfo("pkginfo-bad-pkgname", setKey("pkgname", "Foo"))
	editPkgInfo("pkginfo-pkgname-dash", setKey("pkgname", "-foo"))
	editPkgInfo("pkginfo-bad-arch", setKey("arch", "x86-64"))
	editPkgInfo("pkginfo-size-not-a-number", setKey("size", "12k"))
	editPkgInfo("pkginfo-negative-builddate", setKey("builddate", "-5"))
	editPkgInfo("pkginfo-invalid-utf8", setKey("pkgdesc", "Jos\xe9 in Latin-1"))
	editPkgInfo("pkginfo-nul", setKey("pkgdesc", "a NUL \x00 byte"))
	editPkgInfo("pkginfo-crlf", func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") })
	editPkgInfo("pkginfo-line-without-equals", insertLine("this line has no equals sign"))
	editPkgInfo("pkginfo-bad-key", insertLine("Pkg-Name = x"))
	editPkgInfo("pkginfo-duplicate-pkgname", insertLine("pkgname = other"))
	editPkgInfo("pkginfo-empty-depend", func(s string) string { return s + "depend = \n" })

	// Content entries.
	add("entry-dotdot", withEntry(regular("../etc/passwd", 0o644, []byte("root::0:0::/root:/bin/sh\n"))))
	add("entry-absolute", withEntry(regular("/etc/passwd", 0o644, []byte("root::0:0::/root:/bin/sh\n"))))
	add("entry-dotdot-inside", withEntry(regular("usr/../../etc/passwd", 0o644, []byte("x"))))
	add("entry-dotslash", withEntry(regular("./usr/bin/x", 0o755, []byte("x"))))
	add("entry-double-slash", withEntry(regular("usr//bin/x", 0o755, []byte("x"))))
	add("entry-newline", withEntry(regular("usr/bin/a\nb", 0o755, []byte("x"))))
	bad := regular("usr/bin/\xff", 0o755, []byte("x"))
	bad.hdr.Format = tar.FormatGNU
	add("entry-invalid-utf8", withEntry(bad))
	slashed := tarArchive(append([]tarEntry{pkginfo, regular("usr/bin/xx", 0o755, []byte("x"))}, content...), mtime)
	add("entry-file-trailing-slash", mustCompress(comp, renameEntry(slashed, "usr/bin/xx", "usr/bin/x/")))
	add("entry-unsupported-type", withEntry(tarEntry{hdr: tar.Header{Typeflag: tar.TypeCont, Name: "usr/bin/contiguous", Mode: 0o644}}))

	// Bounds.
	tooLarge("zstd-bomb", zstdBomb(valid))
	tooLarge("xz-bomb", xzBomb(valid))
	tooLarge("gzip-bomb", gzipBomb(valid))
	big := append(slices.Clone(info), bytes.Repeat([]byte("# padding\n"), arch.MaxPkgInfoSize/10)...)
	tooLarge("pkginfo-too-large", withPkgInfo(big))
	tooLarge("too-many-entries", manyEntries(valid, arch.MaxEntries+1))
	long := strings.Repeat(strings.Repeat("d", 200)+"/", arch.MaxPathLen/200+1) + "file"
	tooLarge("path-too-long", withEntry(regular(long, 0o644, []byte("x"))))
	tooLarge("zstd-window-too-large", zstdWindowFrame(tarball, 31))
	tooLarge("xz-dictionary-too-large", xzDictionary(tarball, 40))
	return cases
}

// manyEntries returns a zstd-compressed tar archive of the valid .PKGINFO
// of s and n-1 empty files whose names end in a random bit, written
// straight into the compressor (the archive is n*512 bytes). The names
// make the stream compress no more than MaxExpansion times, so that a
// reader meets the entry bound before the expansion bound.
func manyEntries(s Spec, n int) []byte {
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		panic(err)
	}
	tw := tar.NewWriter(zw)
	writeEntry(tw, regular(".PKGINFO", 0o644, s.PkgInfo()), s.buildDate())
	rng := rand.New(rand.NewPCG(7, 8))
	h := tar.Header{Typeflag: tar.TypeReg, Mode: 0o644, ModTime: s.buildDate(), Uname: "root", Gname: "root"}
	for i := 1; i < n; i++ {
		h.Name = fmt.Sprintf("usr/share/many/%07d-%d", i, rng.IntN(2))
		if err := tw.WriteHeader(&h); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// xzDictionary returns data in an xz stream whose block header declares
// the dictionary size property prop (40 is 4 GiB), with a valid CRC32.
func xzDictionary(data []byte, prop byte) []byte {
	b := mustCompress("xz", data)
	h := b[12:]
	size := (int(h[0]) + 1) * 4
	if h[1] != 0 || h[2] != 0x21 || h[3] != 1 {
		panic(fmt.Sprintf("archtest: unexpected xz block header % x", h[:size]))
	}
	h[4] = prop
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return b
}

// renameEntry renames the ustar entry named from to the name to, of the
// same length, and fixes the header checksum: archive/tar refuses to
// write some names.
func renameEntry(tarball []byte, from, to string) []byte {
	b := slices.Clone(tarball)
	for off := 0; off+512 <= len(b); off += 512 {
		h := b[off : off+512]
		if string(h[:len(from)+1]) != from+"\x00" {
			continue
		}
		copy(h, to)
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	panic("archtest: no entry " + from)
}
