package arch_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/arch/archtest"
)

// fmtSpec is a small valid package for the format tests.
func fmtSpec(name, version, archName, comp string) archtest.Spec {
	return archtest.Spec{
		Name: name, Version: version, Arch: archName, Compression: comp,
		Desc: "  The   " + name + " package \t for tests ", URL: "https://example.com/" + name,
		Licenses: []string{"MIT"}, Depends: []string{"glibc>=2.38"},
		Files: []archtest.File{
			{Path: "usr/bin/" + name, Body: []byte("#!/bin/sh\necho " + name + "\n"), Mode: 0o755},
			{Path: "usr/share/doc/" + name + "/README", Body: []byte(name + " " + version + "\n")},
		},
	}
}

// fileInfoOf is what the repository service knows of data once stored.
func fileInfoOf(data []byte, at time.Time) format.FileInfo {
	return format.FileInfo{SHA256: sha256Hex(data), Size: int64(len(data)), Time: at}
}

// readCounter counts the reads of a reader, to show that Parse refused
// an upload before looking at its content.
type readCounter struct {
	r     io.Reader
	reads int
}

func (c *readCounter) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// newSigningEntity returns a fresh EdDSA key (quick to make).
func newSigningEntity(t *testing.T) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("packyard test", "", "test@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// detachSig returns a binary detached signature of data by e, as gpg
// --detach-sign writes NAME.pkg.tar.zst.sig.
func detachSig(t *testing.T, e *openpgp.Entity, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := openpgp.DetachSign(&b, e, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tarEntryNames lists the entries of a tar stream, checking each entry's
// mtime when want is not zero.
func tarEntryNames(t *testing.T, r io.Reader, want time.Time) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("tar after %q: %v", names, err)
		}
		if !want.IsZero() && !h.ModTime.Equal(want) {
			t.Errorf("%s dated %s, want %s", h.Name, h.ModTime, want)
		}
		names = append(names, h.Name)
	}
}

// TestParseIdentity: the identity comes from .PKGINFO (the epoch split
// off the version), the served path from the identity and the
// compression found in the content, whatever the uploaded file is called.
func TestParseIdentity(t *testing.T) {
	f := arch.New()
	for _, c := range []struct {
		spec     archtest.Spec
		filename string
		want     format.Identity
		path     string
	}{
		{fmtSpec("hello", "1.2.3-4", "x86_64", "zst"), "hello-1.2.3-4-x86_64.pkg.tar.zst",
			format.Identity{Name: "hello", Version: "1.2.3", Release: "4", Arch: "x86_64"}, "x86_64/hello-1.2.3-4-x86_64.pkg.tar.zst"},
		{fmtSpec("tool", "2:1.0rc1-1.1", "aarch64", "xz"), "upload.pkg.tar.zst",
			format.Identity{Name: "tool", Epoch: "2", Version: "1.0rc1", Release: "1.1", Arch: "aarch64"}, "aarch64/tool-2:1.0rc1-1.1-aarch64.pkg.tar.xz"},
		{fmtSpec("py-data", "0.1.r5.gabc1234-2", "any", "gz"), "py-data-9.9-9-x86_64.pkg.tar.xz",
			format.Identity{Name: "py-data", Version: "0.1.r5.gabc1234", Release: "2", Arch: "any"}, "any/py-data-0.1.r5.gabc1234-2-any.pkg.tar.gz"},
	} {
		t.Run(c.path, func(t *testing.T) {
			data := mustBuild(t, c.spec)
			r := bytes.NewReader(data)
			p, err := f.Parse(r, c.filename, format.UploadParams{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Len() != 0 {
				t.Errorf("Parse left %d bytes unread", r.Len())
			}
			if p.Identity != c.want {
				t.Errorf("Identity = %+v, want %+v", p.Identity, c.want)
			}
			if p.Path != c.path {
				t.Errorf("Path = %q, want %q", p.Path, c.path)
			}
			if want := "The " + c.spec.Name + " package for tests"; p.Summary != want {
				t.Errorf("Summary = %q, want %q", p.Summary, want)
			}
			if scope, err := f.Scope(p, format.UploadParams{"distribution": "x"}); scope != "" || err != nil {
				t.Errorf("Scope = %q, %v; pacman repositories have none", scope, err)
			}
		})
	}
}

// TestParseRefusesFileName: a name that is not a pacman package's is
// refused before a byte of the upload is read.
func TestParseRefusesFileName(t *testing.T) {
	data := mustBuild(t, fmtSpec("hello", "1.0-1", "x86_64", "zst"))
	for name, msg := range map[string]string{
		"":                                       ".pkg.tar.zst, .pkg.tar.xz or .pkg.tar.gz",
		"hello-1.0-1-x86_64.rpm":                 ".pkg.tar.zst, .pkg.tar.xz or .pkg.tar.gz",
		"hello_1.0-1_amd64.deb":                  ".pkg.tar.zst, .pkg.tar.xz or .pkg.tar.gz",
		"hello-1.0-1-x86_64.tar.zst":             ".pkg.tar.zst, .pkg.tar.xz or .pkg.tar.gz",
		"hello.pkg":                              ".pkg.tar.zst, .pkg.tar.xz or .pkg.tar.gz",
		"hello-1.0-1-x86_64.pkg.tar.zst.sig":     "send it with its package",
		"hello-1.0-1-x86_64.pkg.tar.zst.tmp.sig": "send it with its package",
	} {
		rc := &readCounter{r: bytes.NewReader(data)}
		_, err := arch.New().Parse(rc, name, format.UploadParams{})
		if !errors.Is(err, format.ErrInvalidPackage) {
			t.Errorf("Parse(%q) = %v, want ErrInvalidPackage", name, err)
			continue
		}
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("Parse(%q): %q does not say %q", name, err, msg)
		}
		if rc.reads != 0 {
			t.Errorf("Parse(%q) read the upload %d times before refusing its name", name, rc.reads)
		}
	}
}

// TestParseSignature: a detached binary signature given with the upload
// is kept and rendered as %PGPSIG% (after %SHA256SUM%, as repo-add writes
// it) and served as FILE.sig; anything but OpenPGP signature packets is
// refused as an invalid package, before the package is read.
func TestParseSignature(t *testing.T) {
	f := arch.New()
	data := mustBuild(t, fmtSpec("hello", "1.0-1", "x86_64", "zst"))
	alice, bob := newSigningEntity(t), newSigningEntity(t)
	sig := detachSig(t, alice, data)
	both := append(slices.Clone(sig), detachSig(t, bob, data)...)
	b64 := base64.StdEncoding.EncodeToString

	for _, c := range []struct {
		name string
		sig  []byte
	}{{"one signature", sig}, {"two signatures", both}} {
		t.Run(c.name, func(t *testing.T) {
			p, err := f.Parse(bytes.NewReader(data), "hello-1.0-1-x86_64.pkg.tar.zst", format.UploadParams{arch.ParamSignature: b64(c.sig)})
			if err != nil {
				t.Fatalf("Parse with a valid signature: %v", err)
			}
			frags, err := f.Render(p, fileInfoOf(data, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			desc := tarFiles(t, bytes.NewReader(frags[arch.FragDB]))["hello-1.0-1/desc"]
			want := "%SHA256SUM%\n" + sha256Hex(data) + "\n\n%PGPSIG%\n" + b64(c.sig) + "\n\n%URL%\n"
			if !strings.Contains(desc, want) {
				t.Errorf("desc lacks %q:\n%s", want, desc)
			}
			if files := tarFiles(t, bytes.NewReader(frags[arch.FragFiles]))["hello-1.0-1/desc"]; files != desc {
				t.Errorf("the files database's desc differs from the package database's:\n%s\n---\n%s", files, desc)
			}
			if !bytes.Equal(frags[arch.FragSig], c.sig) {
				t.Errorf("sig fragment = %x, want the uploaded signature", frags[arch.FragSig])
			}
		})
	}

	t.Run("no signature", func(t *testing.T) {
		p, err := f.Parse(bytes.NewReader(data), "hello-1.0-1-x86_64.pkg.tar.zst", format.UploadParams{arch.ParamSignature: ""})
		if err != nil {
			t.Fatal(err)
		}
		frags, err := f.Render(p, fileInfoOf(data, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if desc := tarFiles(t, bytes.NewReader(frags[arch.FragDB]))["hello-1.0-1/desc"]; strings.Contains(desc, "%PGPSIG%") {
			t.Errorf("desc of an unsigned package has %%PGPSIG%%:\n%s", desc)
		}
		if _, ok := frags[arch.FragSig]; ok {
			t.Error("an unsigned package has a sig fragment")
		}
	})

	var armored bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&armored, alice, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := alice.PrimaryKey.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	var literal bytes.Buffer
	lw, err := packet.SerializeLiteral(nopWriteCloser{&literal}, true, "hello.sig", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lw.Write([]byte("not a signature")); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	oversized := slices.Clone(sig)
	for len(oversized) <= arch.MaxSignatureSize {
		oversized = append(oversized, sig...)
	}
	// A marker packet (tag 10, "PGP") and a packet of a non-critical
	// unknown tag (60): OpenPGP readers skip both, so they would travel
	// unseen inside %PGPSIG%.
	marker := []byte{0xca, 0x03, 'P', 'G', 'P'}
	unknown := []byte{0xfc, 0x01, 'x'}
	for _, c := range []struct {
		name, param string
	}{
		{"not base64", "%%% not base64 %%%"},
		{"garbage", b64([]byte("this is not an OpenPGP signature\n"))},
		{"armored", b64(armored.Bytes())},
		{"armored, not base64", armored.String()},
		{"oversized", b64(oversized)},
		{"truncated", b64(sig[:len(sig)-5])},
		{"public key", b64(pub.Bytes())},
		{"signature and public key", b64(append(slices.Clone(sig), pub.Bytes()...))},
		{"literal data", b64(literal.Bytes())},
		{"marker only", b64(marker)},
		{"signature and marker", b64(append(slices.Clone(sig), marker...))},
		{"signature and unknown packet", b64(append(slices.Clone(sig), unknown...))},
		{"unknown packet and signature", b64(append(slices.Clone(unknown), sig...))},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := &readCounter{r: bytes.NewReader(data)}
			_, err := f.Parse(rc, "hello-1.0-1-x86_64.pkg.tar.zst", format.UploadParams{arch.ParamSignature: c.param})
			if !errors.Is(err, format.ErrInvalidPackage) {
				t.Fatalf("Parse = %v, want ErrInvalidPackage", err)
			}
			if !strings.Contains(err.Error(), "signature") {
				t.Errorf("message %q does not name the signature", err)
			}
			if rc.reads != 0 {
				t.Errorf("the package was read (%d reads) before its signature was refused", rc.reads)
			}
		})
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// TestRenderChecksFileInfo: Render refuses a stored file that is not the
// one parsed, and dates its entries when the file entered the repository.
func TestRenderChecksFileInfo(t *testing.T) {
	f := arch.New()
	s := fmtSpec("hello", "1:1.0-1", "x86_64", "xz")
	data := mustBuild(t, s)
	p, err := f.Parse(bytes.NewReader(data), archtest.FileName(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 7, 8, 9, 10, 999, time.FixedZone("X", 3600))
	good := fileInfoOf(data, at)
	for _, fi := range []format.FileInfo{
		{SHA256: sha256Hex(append(slices.Clone(data), 0)), Size: good.Size, Time: at},
		{SHA256: good.SHA256, Size: good.Size + 1, Time: at},
		{SHA256: "", Size: good.Size, Time: at},
	} {
		if frags, err := f.Render(p, fi); err == nil {
			t.Errorf("Render with %+v (parsed sha256 %s, %d bytes) = %d fragments, want an error", fi, good.SHA256, good.Size, len(frags))
		}
	}
	if _, err := f.Render(&format.Package{Identity: p.Identity, Path: p.Path}, good); err == nil {
		t.Error("Render of a package Parse did not return succeeded")
	}

	frags, err := f.Render(p, good)
	if err != nil {
		t.Fatal(err)
	}
	mtime := at.UTC().Truncate(time.Second)
	if got, want := tarEntryNames(t, bytes.NewReader(frags[arch.FragDB]), mtime), []string{"hello-1:1.0-1/", "hello-1:1.0-1/desc"}; !slices.Equal(got, want) {
		t.Errorf("db fragment entries %q, want %q", got, want)
	}
	if got, want := tarEntryNames(t, bytes.NewReader(frags[arch.FragFiles]), mtime), []string{"hello-1:1.0-1/", "hello-1:1.0-1/desc", "hello-1:1.0-1/files"}; !slices.Equal(got, want) {
		t.Errorf("files fragment entries %q, want %q", got, want)
	}
	for kind, frag := range frags {
		if len(frag)%512 != 0 {
			t.Errorf("%s fragment of %d bytes is not whole tar blocks", kind, len(frag))
		}
		if len(frag) >= 1024 && bytes.Equal(frag[len(frag)-1024:], make([]byte, 1024)) {
			t.Errorf("%s fragment ends the archive; the stream's footer does", kind)
		}
	}
	files := tarFiles(t, bytes.NewReader(frags[arch.FragFiles]))
	desc := files["hello-1:1.0-1/desc"]
	for _, want := range []string{
		"%FILENAME%\nhello-1:1.0-1-x86_64.pkg.tar.xz\n\n",
		"%NAME%\nhello\n\n%BASE%\nhello\n\n%VERSION%\n1:1.0-1\n\n%DESC%\nThe hello package for tests\n\n",
		"%CSIZE%\n" + strconv.Itoa(len(data)) + "\n\n",
		"%SHA256SUM%\n" + good.SHA256 + "\n\n",
		"%ARCH%\nx86_64\n\n",
		"%DEPENDS%\nglibc>=2.38\n\n",
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("desc lacks %q:\n%s", want, desc)
		}
	}
	if want := "%FILES%\n" + strings.Join(specFiles(s), "\n") + "\n"; files["hello-1:1.0-1/files"] != want {
		t.Errorf("files = %q, want %q", files["hello-1:1.0-1/files"], want)
	}
}

// indexEntry is an entry as the repository service hands Streams one: no
// fragments, the identity and path of the package.
func indexEntry(id int64, name, version, archName string) *format.Entry {
	ident := format.Identity{Name: name, Arch: archName}
	v := version
	if e, rest, ok := strings.Cut(v, ":"); ok {
		ident.Epoch, v = e, rest
	}
	i := strings.LastIndexByte(v, '-')
	ident.Version, ident.Release = v[:i], v[i+1:]
	return &format.Entry{ID: id, Arch: archName, Identity: ident,
		Path: archName + "/" + name + "-" + version + "-" + archName + ".pkg.tar.zst"}
}

// streamMatches returns, by stream name, the IDs of the entries each
// stream selects, checking what every arch stream shares.
func streamMatches(t *testing.T, streams []format.Stream, entries []*format.Entry) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
	for _, st := range streams {
		_, kind, _ := strings.Cut(st.Name, "/")
		if st.Fragment != kind || (kind != arch.FragDB && kind != arch.FragFiles) {
			t.Errorf("stream %q has fragment %q", st.Name, st.Fragment)
		}
		if !slices.Equal(st.Encodings, []format.Encoding{format.Gzip}) {
			t.Errorf("stream %q encodings %q, want gzip only", st.Name, st.Encodings)
		}
		if h := st.Header(len(entries)); len(h) != 0 {
			t.Errorf("stream %q has a %d-byte header; a tar archive starts with its first entry", st.Name, len(h))
		}
		if !bytes.Equal(st.Footer, make([]byte, 1024)) {
			t.Errorf("stream %q footer is %d bytes, want the two zero blocks ending a tar archive", st.Name, len(st.Footer))
		}
		if st.LegacyHashes {
			t.Errorf("stream %q asks for MD5 and SHA-1", st.Name)
		}
		if st.Match == nil {
			t.Fatalf("stream %q matches everything", st.Name)
		}
		ids := []int64{}
		for _, e := range entries {
			if st.Match(e) {
				ids = append(ids, e.ID)
			}
		}
		if _, dup := out[st.Name]; dup {
			t.Errorf("stream %q twice", st.Name)
		}
		out[st.Name] = ids
	}
	return out
}

// TestStreamsArchitectures: a database and a files database per
// architecture of the packages and of the configuration, the "any"
// packages in each, and x86_64 when nothing names an architecture.
func TestStreamsArchitectures(t *testing.T) {
	x86 := indexEntry(1, "hello", "1.0-1", "x86_64")
	arm := indexEntry(2, "hello", "1.0-1", "aarch64")
	anyPkg := indexEntry(3, "data", "1.0-1", "any")
	tool := indexEntry(4, "tool", "2.0-1", "x86_64")
	all := []*format.Entry{x86, arm, anyPkg, tool}
	for _, c := range []struct {
		name       string
		entries    []*format.Entry
		configured []string
		want       map[string][]int64
	}{
		{"x86_64, aarch64 and any", all, nil, map[string][]int64{
			"aarch64/db": {2, 3}, "aarch64/files": {2, 3}, "x86_64/db": {1, 3, 4}, "x86_64/files": {1, 3, 4}}},
		{"configured architecture without packages", all, []string{"armv7h", "x86_64"}, map[string][]int64{
			"aarch64/db": {2, 3}, "aarch64/files": {2, 3}, "armv7h/db": {3}, "armv7h/files": {3},
			"x86_64/db": {1, 3, 4}, "x86_64/files": {1, 3, 4}}},
		{"only any", []*format.Entry{anyPkg}, nil, map[string][]int64{"x86_64/db": {3}, "x86_64/files": {3}}},
		{"only any, aarch64 configured", []*format.Entry{anyPkg}, []string{"aarch64"}, map[string][]int64{"aarch64/db": {3}, "aarch64/files": {3}}},
		{"empty", nil, nil, map[string][]int64{"x86_64/db": {}, "x86_64/files": {}}},
		{"empty, configured", nil, []string{"i686", "aarch64"}, map[string][]int64{
			"aarch64/db": {}, "aarch64/files": {}, "i686/db": {}, "i686/files": {}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := format.PublishOptions{RepoName: "r", Settings: format.Settings{Architectures: c.configured}}
			streams := arch.New().Streams(c.entries, opts)
			got := streamMatches(t, streams, c.entries)
			if len(got) != len(c.want) {
				t.Errorf("streams %v, want %v", got, c.want)
			}
			for name, ids := range c.want {
				if g, ok := got[name]; !ok || !slices.Equal(g, ids) {
					t.Errorf("stream %s selects %v (present %v), want %v", name, g, ok, ids)
				}
			}
			var names []string
			for _, st := range streams {
				names = append(names, st.Name)
			}
			if !slices.IsSorted(names) {
				t.Errorf("streams in order %q; publishes must list them the same way every time", names)
			}
		})
	}
}

// TestStreamsNewestVersion: a sync database holds one entry per package
// name, the newest by vercmp (epoch first), the later upload on a tie;
// the others stay served under their paths but pacman would refuse a
// database holding two versions.
func TestStreamsNewestVersion(t *testing.T) {
	entries := []*format.Entry{
		indexEntry(1, "tool", "1.0-1", "x86_64"),
		indexEntry(2, "tool", "1.10-1", "x86_64"),
		indexEntry(3, "tool", "1.9-1", "x86_64"), // uploaded later, older
		indexEntry(4, "lib", "2.0-1", "x86_64"),
		indexEntry(5, "lib", "2.0-1", "any"), // the same version again
		indexEntry(6, "data", "9.0-1", "any"),
		indexEntry(7, "data", "1:0.1-1", "any"),
		indexEntry(8, "tool", "1.0-1", "aarch64"),
		indexEntry(9, "tool", "1.0-2", "aarch64"),
	}
	got := streamMatches(t, arch.New().Streams(entries, format.PublishOptions{RepoName: "r"}), entries)
	want := map[string][]int64{"x86_64/db": {2, 5, 7}, "x86_64/files": {2, 5, 7}, "aarch64/db": {5, 7, 9}, "aarch64/files": {5, 7, 9}}
	if len(got) != len(want) {
		t.Errorf("streams %v, want %v", got, want)
	}
	for name, ids := range want {
		if !slices.Equal(got[name], ids) {
			t.Errorf("%s selects %v, want %v", name, got[name], ids)
		}
	}
}

// TestStreamsAssemble concatenates rendered fragments as the repository
// service does (header, fragments in chunks of gzip members, footer): the
// result is one gzip-compressed tar archive, read by archive/tar and by
// the real bsdtar, holding each selected package's entries.
func TestStreamsAssemble(t *testing.T) {
	f := arch.New()
	specs := []archtest.Spec{
		fmtSpec("hello", "1.0-1", "x86_64", "zst"),
		fmtSpec("hello", "1.0-1", "aarch64", "xz"),
		fmtSpec("data", "2:0.5-1", "any", "gz"),
		fmtSpec("tool", "1.0-1", "x86_64", "zst"),
		fmtSpec("tool", "1.1-1", "x86_64", "zst"),
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var entries []*format.Entry
	for i, s := range specs {
		data := mustBuild(t, s)
		p, err := f.Parse(bytes.NewReader(data), archtest.FileName(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		frags, err := f.Render(p, fileInfoOf(data, at))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, &format.Entry{ID: int64(i + 1), Arch: p.Arch, Path: p.Path, Identity: p.Identity, Fragments: frags})
	}
	want := map[string][]string{
		"x86_64/db":     {"hello-1.0-1/", "hello-1.0-1/desc", "data-2:0.5-1/", "data-2:0.5-1/desc", "tool-1.1-1/", "tool-1.1-1/desc"},
		"aarch64/files": {"hello-1.0-1/", "hello-1.0-1/desc", "hello-1.0-1/files", "data-2:0.5-1/", "data-2:0.5-1/desc", "data-2:0.5-1/files"},
	}
	bsdtar := lookTool(t, "bsdtar")
	for _, st := range f.Streams(entries, format.PublishOptions{RepoName: "r"}) {
		var sel []*format.Entry
		for _, e := range entries {
			if st.Match(e) {
				sel = append(sel, e)
			}
		}
		var gz bytes.Buffer
		member := func(b []byte) {
			zw := gzip.NewWriter(&gz)
			if _, err := zw.Write(b); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
		}
		member(st.Header(len(sel)))
		for i := 0; i < len(sel); i += 2 {
			var chunk []byte
			for _, e := range sel[i:min(i+2, len(sel))] {
				chunk = append(chunk, e.Fragments[st.Fragment]...)
			}
			member(chunk)
		}
		member(st.Footer)

		zr, err := gzip.NewReader(bytes.NewReader(gz.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		names := tarEntryNames(t, zr, at)
		if w, ok := want[st.Name]; ok && !slices.Equal(names, w) {
			t.Errorf("%s holds %q, want %q", st.Name, names, w)
		}
		cmd := exec.Command(bsdtar, "-tf", "-")
		cmd.Stdin = bytes.NewReader(gz.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bsdtar -tf %s: %v\n%s", st.Name, err, out)
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, names) {
			t.Errorf("bsdtar lists %s as %q, archive/tar as %q", st.Name, got, names)
		}
	}
}

// stubSigner records the hash states it signs and returns "SIG(state)".
type stubSigner struct {
	states [][]byte
	err    error
	mu     sync.Mutex
}

func (s *stubSigner) DetachArmored([]byte) ([]byte, error) {
	return nil, errors.New("unexpected DetachArmored")
}
func (s *stubSigner) DetachBinary([]byte) ([]byte, error) {
	return nil, errors.New("unexpected DetachBinary")
}
func (s *stubSigner) ClearSign([]byte) ([]byte, error) {
	return nil, errors.New("unexpected ClearSign")
}
func (s *stubSigner) DetachBinaryState(state []byte) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.mu.Lock() // Finish signs the streams at once
	defer s.mu.Unlock()
	s.states = append(s.states, state)
	return []byte("SIG(" + string(state) + ")"), nil
}

var _ format.Signer = (*stubSigner)(nil)

// TestFinish: per architecture NAME.db.tar.gz and NAME.db (the same
// assembled file), NAME.files.tar.gz and NAME.files, each with a .sig
// made from the assembled file's hash state when the repository is
// signed.
func TestFinish(t *testing.T) {
	f := arch.New()
	var built []format.Built
	for i, name := range []string{"aarch64/db", "aarch64/files", "x86_64/db", "x86_64/files"} {
		built = append(built, format.Built{Name: name,
			Raw: format.Blob{SHA256: "raw" + name, Size: int64(1000 + i)},
			Encoded: map[format.Encoding]format.Blob{format.Gzip: {
				SHA256: "gz-" + name, Size: int64(100 + i), Parts: []string{"p1", "p2"}, State: []byte("state-" + name)}}})
	}
	type file struct {
		sha  string
		size int64
		data string
	}
	wantFiles := func(signed bool) map[string]file {
		out := map[string]file{}
		for i, b := range built {
			a, kind, _ := strings.Cut(b.Name, "/")
			for _, p := range []string{a + "/myrepo." + kind, a + "/myrepo." + kind + ".tar.gz"} {
				out[p] = file{sha: "gz-" + b.Name, size: int64(100 + i)}
				if signed {
					out[p+".sig"] = file{data: "SIG(state-" + b.Name + ")"}
				}
			}
		}
		return out
	}
	for _, signed := range []bool{false, true} {
		opts := format.PublishOptions{RepoName: "myrepo", Time: time.Now(), Revision: 7}
		signer := &stubSigner{}
		if signed {
			opts.Signer = signer
		}
		files, err := f.Finish(built, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]file{}
		for _, fl := range files {
			if _, dup := got[fl.Path]; dup {
				t.Errorf("%s twice", fl.Path)
			}
			got[fl.Path] = file{sha: fl.SHA256, size: fl.Size, data: string(fl.Data)}
			wantCT := "application/gzip"
			if strings.HasSuffix(fl.Path, ".sig") {
				wantCT = "application/pgp-signature"
				if fl.SHA256 != "" || fl.Size != 0 {
					t.Errorf("%s names a blob (%s, %d) besides its data", fl.Path, fl.SHA256, fl.Size)
				}
			} else if fl.Data != nil {
				t.Errorf("%s carries data; it is the assembled stream", fl.Path)
			}
			if fl.ContentType != wantCT {
				t.Errorf("%s Content-Type %q, want %q", fl.Path, fl.ContentType, wantCT)
			}
		}
		want := wantFiles(signed)
		if len(got) != len(want) {
			t.Errorf("signed=%v: %d files, want %d: %v", signed, len(got), len(want), got)
		}
		for p, w := range want {
			if g, ok := got[p]; !ok || g != w {
				t.Errorf("signed=%v: %s = %+v (present %v), want %+v", signed, p, g, ok, w)
			}
		}
		if signed {
			var states []string
			for _, s := range signer.states {
				states = append(states, string(s))
			}
			slices.Sort(states)
			if want := []string{"state-aarch64/db", "state-aarch64/files", "state-x86_64/db", "state-x86_64/files"}; !slices.Equal(states, want) {
				t.Errorf("signed states %q, want each stream's gzip state once: %q", states, want)
			}
		}
	}

	signErr := errors.New("the key is on a smartcard that was unplugged")
	if _, err := f.Finish(built, format.PublishOptions{RepoName: "myrepo", Signer: &stubSigner{err: signErr}}); !errors.Is(err, signErr) {
		t.Errorf("Finish with a failing signer = %v, want it wrapped", err)
	}
	for _, bad := range []format.Built{
		{Name: "db", Encoded: built[0].Encoded},
		{Name: "x86_64/db", Encoded: map[format.Encoding]format.Blob{format.Zstd: {SHA256: "z"}}},
	} {
		if _, err := f.Finish([]format.Built{bad}, format.PublishOptions{RepoName: "myrepo"}); err == nil {
			t.Errorf("Finish of %+v succeeded", bad)
		}
	}
}

// TestPackageAlias: an "any" package is served from every architecture's
// directory; nothing else is aliased.
func TestPackageAlias(t *testing.T) {
	f := arch.New()
	for _, c := range []struct {
		path, want string
	}{
		{"x86_64/data-1.0-1-any.pkg.tar.zst", "any/data-1.0-1-any.pkg.tar.zst"},
		{"aarch64/data-2:1.0-1-any.pkg.tar.xz", "any/data-2:1.0-1-any.pkg.tar.xz"},
		{"any/data-1.0-1-any.pkg.tar.zst", ""},
		{"x86_64/hello-1.0-1-x86_64.pkg.tar.zst", ""},
		{"data-1.0-1-any.pkg.tar.zst", ""},
		{"x86_64/sub/data-1.0-1-any.pkg.tar.zst", ""},
		{"x86_64/r.db", ""},
	} {
		got, ok := f.PackageAlias(c.path)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("PackageAlias(%q) = %q, %v; want %q", c.path, got, ok, c.want)
		}
	}
}

// TestSidecar: FILE.sig is the signature fragment of FILE.
func TestSidecar(t *testing.T) {
	f := arch.New()
	for _, c := range []struct {
		path, want string
	}{
		{"x86_64/hello-1.0-1-x86_64.pkg.tar.zst.sig", "x86_64/hello-1.0-1-x86_64.pkg.tar.zst"},
		{"aarch64/data-1.0-1-any.pkg.tar.gz.sig", "aarch64/data-1.0-1-any.pkg.tar.gz"},
		{"x86_64/hello-1.0-1-x86_64.pkg.tar.zst", ""},
		{"x86_64/r.db.sig", ""},
	} {
		got, kind, ok := f.Sidecar(c.path)
		if ok != (c.want != "") || got != c.want || (ok && kind != arch.FragSig) {
			t.Errorf("Sidecar(%q) = %q, %q, %v; want %q", c.path, got, kind, ok, c.want)
		}
	}
}

// TestCompare orders identities as vercmp orders full versions.
func TestCompare(t *testing.T) {
	f := arch.New()
	id := func(epoch, ver, rel string) format.Identity {
		return format.Identity{Name: "p", Epoch: epoch, Version: ver, Release: rel, Arch: "x86_64"}
	}
	for _, c := range []struct {
		a, b format.Identity
		want int
	}{
		{id("", "1.0", "1"), id("", "1.0", "1"), 0},
		{id("", "1.10", "1"), id("", "1.9", "1"), 1},
		{id("1", "0.1", "1"), id("", "9.0", "1"), 1},
		{id("", "1.0", "1"), id("", "1.0", "1.1"), -1},
		{id("", "1.0rc1", "1"), id("", "1.0", "1"), -1},
	} {
		if got := f.Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%+v, %+v) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := f.Compare(c.b, c.a); got != -c.want {
			t.Errorf("Compare(%+v, %+v) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestReadPackageTruncatedPadding: an archive cut inside the padding of
// its last entry is truncated, as libarchive (and so pacman) says, though
// every byte of the entry's content is there; one without the two zero
// blocks that end an archive is not (bsdtar reads it without a word).
func TestReadPackageTruncatedPadding(t *testing.T) {
	s := fmtSpec("victim", "1.0-1", "x86_64", "zst")
	s.Files = append(s.Files, archtest.File{Path: "usr/share/victim/z", Body: []byte("44 bytes, so that the padding is 468 bytes.\n")})
	tarball, err := archtest.Tar(s)
	if err != nil {
		t.Fatal(err)
	}
	bsdtar := lookTool(t, "bsdtar")
	for _, c := range []struct {
		name      string
		cut       int
		truncated bool
	}{
		{"inside the padding", len(tarball) - 1024 - 300, true},
		{"one byte into the padding", len(tarball) - 1024 - 467, true},
		{"without end blocks", len(tarball) - 1024, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := archtest.Compress("zst", tarball[:c.cut])
			if err != nil {
				t.Fatal(err)
			}
			_, err = arch.ReadPackage(bytes.NewReader(data))
			if c.truncated != errors.Is(err, arch.ErrTruncated) || !c.truncated && err != nil {
				t.Errorf("ReadPackage = %v, want truncated %v", err, c.truncated)
			}
			if err != nil && !strings.Contains(err.Error(), `ends early, in or after entry "usr/share/victim/z"`) {
				t.Errorf("message %q does not say where", err)
			}
			cmd := exec.Command(bsdtar, "-tf", "-")
			cmd.Stdin = bytes.NewReader(tarball[:c.cut])
			if out, err := cmd.CombinedOutput(); (err != nil) != c.truncated {
				t.Errorf("bsdtar -tf: %v, want failure %v\n%s", err, c.truncated, out)
			}
		})
	}
}
