package debtest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/packyard/packyard/internal/format/deb"
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
// build (it panics otherwise):
//
//   - not an ar archive, empty, random bytes, trailing garbage;
//   - cut in the ar magic, in a member header, in debian-binary, in
//     control.tar, in data.tar;
//   - a debian-binary of "3.0\n", without newline, of garbage, too large;
//   - members in the wrong order, missing control.tar or data.tar, two
//     control members, an unknown member before data.tar;
//   - member headers whose size is not a number or lies past the end of
//     the file, whose mode is not octal or whose end marker is wrong;
//   - control.tar compressed with bzip2 (deb(5) allows bzip2 and lzma for
//     data.tar only), or with an unknown compression; data.tar with an
//     unknown compression; empty control.tar or data.tar members;
//   - control.tar entries "../control" or "/etc/passwd", a control file
//     that is a symlink or a directory, two control files, none, a FIFO;
//   - corrupt gzip, xz and zstd control members, one that is not tar;
//   - a decompression bomb (a control.tar.gz of about 100 KiB that
//     inflates to more than 100 MiB of zeros), a control file over
//     deb.MaxControlSize, a control member over deb.MaxControlMemberSize;
//   - control files without Package, with Version "1..:", a line without
//     colon, a duplicate field, a NUL byte, CRLF line ends, Architecture
//     "amd 64", invalid UTF-8, a comment line, a second paragraph, an
//     invalid package name, Installed-Size or Source.
func Malformed(valid Spec) []Case {
	ms, err := Members(valid)
	if err != nil {
		panic(fmt.Sprintf("debtest: Malformed needs a valid spec: %v", err))
	}
	good := Archive(ms...)
	binary, ctl, data := ms[0], ms[1], ms[2]
	comp := valid.compression()
	var cases []Case
	add := func(name string, b []byte) { cases = append(cases, Case{Name: name, Data: b}) }
	tooLarge := func(name string, b []byte) { cases = append(cases, Case{Name: name, Data: b, TooLarge: true}) }
	// Offsets in good: magic, debian-binary header and data, control
	// header and data, data header and data.
	ctlHeader := 8 + 60 + 4
	ctlAt := ctlHeader + 60
	dataHeader := ctlAt + len(ctl.Data) + len(ctl.Data)%2
	dataAt := dataHeader + 60
	cut := func(name string, n int) { add(name, slices.Clone(good[:n])) }
	edit := func(name string, f func(b []byte)) {
		b := slices.Clone(good)
		f(b)
		add(name, b)
	}
	// withControlTar builds good with its control.tar replaced.
	withControlTar := func(entries ...tarEntry) []byte {
		t := tarArchive(entries, valid.modTime())
		return Archive(binary, Member{Name: ctl.Name, Data: mustCompress(comp, t)}, data)
	}
	controlFile := regular("./control", 0o644, valid.Control())
	// withControl builds good with its control file replaced.
	withControl := func(control []byte) []byte {
		m, err := members(valid, control)
		if err != nil {
			panic(err)
		}
		return Archive(m...)
	}
	editControl := func(name string, f func(string) string) {
		add(name, withControl([]byte(f(string(valid.Control())))))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}

	// Not a package.
	add("empty", []byte{})
	add("not-ar", []byte("This is not a Debian package.\n"))
	add("random-bytes", random)
	add("tar-not-ar", tarArchive([]tarEntry{controlFile}, valid.modTime()))
	add("trailing-garbage", append(slices.Clone(good), "garbage"...))

	// Truncation.
	cut("truncated-magic", 4)
	cut("magic-only", 8)
	cut("truncated-member-header", 8+30)
	cut("truncated-debian-binary", 8+60+2)
	cut("truncated-control-header", ctlHeader+20)
	cut("truncated-control", ctlAt+len(ctl.Data)/2)
	cut("truncated-data-header", dataHeader+59)
	cut("truncated-data", dataAt+len(data.Data)/2)
	if len(data.Data)%2 == 1 {
		cut("truncated-padding", len(good)-1)
	}

	// debian-binary.
	for _, c := range [][2]string{
		{"debian-binary-3.0", "3.0\n"},
		{"debian-binary-no-newline", "2.0"},
		{"debian-binary-garbage", "hello\n"},
	} {
		add(c[0], Archive(Member{Name: "debian-binary", Data: []byte(c[1])}, ctl, data))
	}
	tooLarge("debian-binary-too-large", Archive(Member{Name: "debian-binary", Data: []byte("2.0\n" + strings.Repeat("x\n", 1000))}, ctl, data))

	// Members.
	add("control-first", Archive(ctl, binary, data))
	add("data-before-control", Archive(binary, data, ctl))
	add("missing-control", Archive(binary, data))
	add("missing-data", Archive(binary, ctl))
	add("only-debian-binary", Archive(binary))
	add("two-control-members", Archive(binary, ctl, ctl, data))
	add("unknown-member-before-data", Archive(binary, ctl, Member{Name: "extra", Data: []byte("x")}, data))
	add("control-bz2", Archive(binary, Member{Name: "control.tar.bz2", Data: ctl.Data}, data))
	add("control-unknown-compression", Archive(binary, Member{Name: "control.tar.lz4", Data: ctl.Data}, data))
	add("data-unknown-compression", Archive(binary, ctl, Member{Name: "data.tar.rar", Data: data.Data}))
	add("control-empty", Archive(binary, Member{Name: ctl.Name}, data))
	add("data-empty", Archive(binary, ctl, Member{Name: data.Name}))

	// Member headers.
	edit("ar-size-not-a-number", func(b []byte) { copy(b[ctlHeader+48:], "12a4      ") })
	edit("ar-size-past-end", func(b []byte) { copy(b[dataHeader+48:], fmt.Sprintf("%-10d", len(data.Data)+1000)) })
	edit("ar-mode-not-octal", func(b []byte) { copy(b[ctlHeader+40:], "100999  ") })
	edit("ar-bad-header-end", func(b []byte) { copy(b[ctlHeader+58:], "\n`") })

	// control.tar entries.
	add("control-dotdot", withControlTar(directory("./", 0o755), regular("../control", 0o644, valid.Control())))
	add("control-absolute-entry", withControlTar(controlFile, regular("/etc/passwd", 0o644, []byte("root:x:0:0::/root:/bin/sh\n"))))
	add("control-symlink", withControlTar(directory("./", 0o755), tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "./control", Linkname: "/etc/passwd", Mode: 0o777}}))
	add("control-directory", withControlTar(directory("./", 0o755), directory("./control/", 0o755)))
	add("control-duplicate", withControlTar(controlFile, regular("control", 0o644, valid.Control())))
	add("control-missing", withControlTar(directory("./", 0o755), regular("./md5sums", 0o644, []byte{})))
	add("control-fifo", withControlTar(controlFile, tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "./postinst", Mode: 0o644}}))
	ctlTar := tarArchive([]tarEntry{directory("./", 0o755), controlFile}, valid.modTime())
	for _, c := range []string{"gz", "xz", "zst"} {
		z := mustCompress(c, ctlTar)
		z[len(z)/2] ^= 0x55
		z[len(z)-5] ^= 0x55
		add("control-corrupt-"+c, Archive(binary, Member{Name: "control.tar." + c, Data: z}, data))
	}
	add("control-not-tar", Archive(binary, Member{Name: ctl.Name, Data: mustCompress(comp, bytes.Repeat([]byte("not a tar archive\n"), 100))}, data))

	// Bounds.
	tooLarge("bomb", Archive(binary, Member{Name: "control.tar.gz", Data: bomb(101 << 20)}, data))
	big := valid
	big.Extra = append(slices.Clone(big.Extra), deb.Field{Name: "X-Padding", Value: strings.Repeat("x", deb.MaxControlSize)})
	tooLarge("control-too-large", withControl(big.Control()))
	tooLarge("control-member-too-large", Archive(binary, Member{Name: ctl.Name, Data: make([]byte, deb.MaxControlMemberSize+2)}, data))

	// Control files.
	lines := func(f func([]string) []string) func(string) string {
		return func(c string) string {
			return strings.Join(f(strings.Split(c, "\n")), "\n")
		}
	}
	replaceField := func(field, value string) func(string) string {
		return lines(func(ls []string) []string {
			for i, l := range ls {
				if strings.HasPrefix(l, field+":") {
					ls[i] = field + ": " + value
				}
			}
			return ls
		})
	}
	editControl("missing-package", lines(func(ls []string) []string { return ls[1:] }))
	editControl("invalid-version", replaceField("Version", "1..:"))
	editControl("line-without-colon", lines(func(ls []string) []string {
		return slices.Insert(ls, 1, "This line has no colon")
	}))
	editControl("duplicate-field", lines(func(ls []string) []string { return slices.Insert(ls, 1, "package: again") }))
	editControl("nul-byte", replaceField("Maintainer", "Nul \x00 Byte <nul@example.com>"))
	editControl("crlf", func(c string) string { return strings.ReplaceAll(c, "\n", "\r\n") })
	editControl("invalid-architecture", replaceField("Architecture", "amd 64"))
	editControl("invalid-utf8", replaceField("Maintainer", "Jos\xe9 Latin1 <jose@example.com>"))
	editControl("comment-line", lines(func(ls []string) []string { return slices.Insert(ls, 1, "# a comment") }))
	editControl("second-paragraph", func(c string) string { return c + "\nPackage: other\n" })
	editControl("invalid-package-name", replaceField("Package", "Foo_Bar"))
	editControl("invalid-installed-size", lines(func(ls []string) []string { return slices.Insert(ls, 1, "Installed-Size: 12k") }))
	editControl("invalid-source", lines(func(ls []string) []string { return slices.Insert(ls, 1, "Source: src (1..:)") }))
	editControl("empty-control", func(string) string { return "\n\n" })
	return cases
}

// bomb returns a gzip stream of a tar archive holding one member,
// ./md5sums, of n zero bytes.
func bomb(n int64) []byte {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	if err != nil {
		panic(err)
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./md5sums", Size: n, Mode: 0o644, Format: tar.FormatGNU}); err != nil {
		panic(err)
	}
	if _, err := io.CopyN(tw, zeros{}, n); err != nil {
		panic(err)
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// zeros reads zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
