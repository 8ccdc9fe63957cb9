package deb_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/deb"
	"github.com/packyard/packyard/internal/format/deb/debtest"
)

func spec(name, version, arch string) debtest.Spec {
	return debtest.Spec{
		Package: name, Version: version, Architecture: arch,
		Maintainer: "T <t@example.com>", Description: "synopsis of " + name + "\nlong text",
		Compression: "gz", ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func mustBuild(t *testing.T, s debtest.Spec) []byte {
	t.Helper()
	b, err := debtest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errReader fails the test if Parse reads a body it should refuse first.
type errReader struct{ t *testing.T }

func (r errReader) Read([]byte) (int, error) {
	r.t.Error("Parse read the body of an upload it must refuse from its parameters")
	return 0, errors.New("read")
}

func TestParseRefusesBadParametersBeforeReading(t *testing.T) {
	f := deb.New()
	for _, tc := range []struct {
		file   string
		params format.UploadParams
		want   string
	}{
		{"a_1_amd64.rpm", format.UploadParams{"distribution": "stable"}, "not a .deb"},
		{"a_1_amd64.deb", format.UploadParams{}, "needs a distribution"},
		{"a_1_amd64.deb", format.UploadParams{"distribution": "../x"}, "distribution"},
		{"a_1_amd64.deb", format.UploadParams{"distribution": "stable", "component": "by-hash"}, "component"},
		{"a_1_amd64.deb", format.UploadParams{"distribution": "sta ble"}, "distribution"},
	} {
		_, err := f.Parse(errReader{t}, tc.file, tc.params)
		if !errors.Is(err, format.ErrInvalidPackage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s, %v) = %v; want ErrInvalidPackage mentioning %q", tc.file, tc.params, err, tc.want)
		}
	}
}

func TestParseIdentityAndPool(t *testing.T) {
	f := deb.New()
	for _, tc := range []struct {
		spec                    debtest.Spec
		file                    string
		comp                    string
		epoch, version, release string
		path                    string
	}{
		{spec("hello", "1.0-1", "amd64"), "hello_1.0-1_amd64.deb", "main", "", "1.0", "1", "pool/main/h/hello/hello_1.0-1_amd64.deb"},
		{spec("hello", "0:1.0-1", "amd64"), "hello.deb", "main", "", "1.0", "1", "pool/main/h/hello/hello_1.0-1_amd64.deb"},
		{spec("tool", "2:3.1.4", "all"), "x.deb", "contrib", "2", "3.1.4", "", "pool/contrib/t/tool/tool_3.1.4_all.deb"},
		{func() debtest.Spec { s := spec("libfoo1", "1.2-3+b1", "arm64"); s.Source = "foo (1.2-3)"; return s }(),
			"libfoo1.deb", "main", "", "1.2", "3+b1", "pool/main/f/foo/libfoo1_1.2-3+b1_arm64.deb"},
		{func() debtest.Spec { s := spec("libbar-dev", "1.0-1", "amd64"); s.Source = "libbar"; return s }(),
			"libbar-dev.deb", "main", "", "1.0", "1", "pool/main/libb/libbar/libbar-dev_1.0-1_amd64.deb"},
		{spec("inst", "1.0", "amd64"), "inst_1.0_amd64.udeb", "main", "", "1.0", "", "pool/main/i/inst/inst_1.0_amd64.udeb"},
	} {
		params := format.UploadParams{"distribution": "stable", "component": tc.comp}
		p, err := f.Parse(bytes.NewReader(mustBuild(t, tc.spec)), tc.file, params)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec.Package, err)
		}
		want := format.Identity{Name: tc.spec.Package, Epoch: tc.epoch, Version: tc.version, Release: tc.release, Arch: tc.spec.Architecture}
		if p.Identity != want || p.Path != tc.path || p.Summary != "synopsis of "+tc.spec.Package {
			t.Errorf("%s: identity %+v path %s summary %q; want %+v %s", tc.spec.Package, p.Identity, p.Path, p.Summary, want, tc.path)
		}
		scope, err := f.Scope(p, params)
		if err != nil || scope != "stable/"+tc.comp {
			t.Errorf("%s: scope %q, %v", tc.spec.Package, scope, err)
		}
	}
}

func TestRenderChecksTheStoredFile(t *testing.T) {
	f := deb.New()
	data := mustBuild(t, spec("hello", "1.0-1", "amd64"))
	p, err := f.Parse(bytes.NewReader(data), "hello.deb", format.UploadParams{"distribution": "stable"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Render(p, format.FileInfo{SHA256: strings.Repeat("0", 64), Size: int64(len(data))}); err == nil {
		t.Fatal("Render accepted a file digest other than the parsed file's")
	}
	frags, err := f.Render(p, format.FileInfo{SHA256: sha256Hex(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	st := string(frags[deb.FragPackages])
	for _, want := range []string{"Package: hello\n", "Version: 1.0-1\n", "Filename: pool/main/h/hello/hello_1.0-1_amd64.deb\n",
		"SHA256: " + sha256Hex(data) + "\n", "Description: synopsis of hello\n long text\n"} {
		if !strings.Contains(st, want) {
			t.Errorf("stanza lacks %q:\n%s", want, st)
		}
	}
	if !strings.HasSuffix(st, "\n\n") {
		t.Errorf("stanza does not end with a blank line: %q", st)
	}
}

func TestCompare(t *testing.T) {
	f := deb.New()
	id := func(e, v, r string) format.Identity { return format.Identity{Epoch: e, Version: v, Release: r} }
	if f.Compare(id("1", "0.1", ""), id("", "2.0", "1")) <= 0 {
		t.Error("1:0.1 must be newer than 2.0-1")
	}
	if f.Compare(id("", "1.0~rc1", "1"), id("", "1.0", "1")) >= 0 {
		t.Error("1.0~rc1-1 must be older than 1.0-1")
	}
	if f.Compare(id("", "1.0", "1"), id("", "1.0", "1")) != 0 {
		t.Error("equal versions")
	}
}

func entry(id int64, scope, arch, path string) *format.Entry {
	return &format.Entry{ID: id, Scope: scope, Arch: arch, Path: path}
}

func TestStreams(t *testing.T) {
	entries := []*format.Entry{
		entry(1, "bookworm/main", "amd64", "pool/main/a/a/a_1_amd64.deb"),
		entry(2, "bookworm/main", "all", "pool/main/b/b/b_1_all.deb"),
		entry(3, "bookworm/contrib", "arm64", "pool/contrib/c/c/c_1_arm64.deb"),
		entry(4, "bookworm/main", "amd64", "pool/main/d/d/d_1_amd64.udeb"),
		entry(5, "trixie/main", "all", "pool/main/b/b/b_1_all.deb"),
	}
	streams := deb.New().Streams(entries, format.PublishOptions{})
	got := map[string][]int64{}
	var names []string
	for _, st := range streams {
		names = append(names, st.Name)
		if !st.LegacyHashes || len(st.Encodings) != 3 {
			t.Errorf("%s: LegacyHashes %v, encodings %v", st.Name, st.LegacyHashes, st.Encodings)
		}
		for _, e := range entries {
			if st.Match(e) {
				got[st.Name] = append(got[st.Name], e.ID)
			}
		}
	}
	want := map[string][]int64{
		"dists/bookworm/contrib/binary-amd64/Packages":               nil,
		"dists/bookworm/contrib/binary-arm64/Packages":               {3},
		"dists/bookworm/main/binary-amd64/Packages":                  {1, 2},
		"dists/bookworm/main/binary-arm64/Packages":                  {2},
		"dists/bookworm/main/debian-installer/binary-amd64/Packages": {4},
		"dists/bookworm/main/debian-installer/binary-arm64/Packages": nil,
		"dists/trixie/main/binary-amd64/Packages":                    {5},
	}
	if len(streams) != len(want) {
		t.Fatalf("streams %v; want %d", names, len(want))
	}
	for name, ids := range want {
		if !equalIDs(got[name], ids) {
			t.Errorf("%s holds %v, want %v", name, got[name], ids)
		}
	}
	// Configured architectures are indexed without packages of their own.
	streams = deb.New().Streams(entries[4:], format.PublishOptions{Settings: format.Settings{Architectures: []string{"riscv64", "i386"}}})
	names = names[:0]
	for _, st := range streams {
		names = append(names, st.Name)
	}
	if strings.Join(names, " ") != "dists/trixie/main/binary-i386/Packages dists/trixie/main/binary-riscv64/Packages" {
		t.Errorf("with configured architectures: %v", names)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type stubSigner struct{}

func (stubSigner) DetachArmored(d []byte) ([]byte, error)   { return []byte("SIG " + sha256Hex(d)), nil }
func (stubSigner) DetachBinary(d []byte) ([]byte, error)    { return nil, errors.New("unused") }
func (stubSigner) ClearSign(d []byte) ([]byte, error)       { return append([]byte("CLEAR\n"), d...), nil }
func (stubSigner) DetachBinaryState([]byte) ([]byte, error) { return nil, errors.New("unused") }

func TestFinishRelease(t *testing.T) {
	blob := func(s string, n int64) format.Blob {
		return format.Blob{SHA256: strings.Repeat(s, 64), MD5: strings.Repeat(s, 32), SHA1: strings.Repeat(s, 40), Size: n}
	}
	built := []format.Built{
		{Name: "dists/stable/main/binary-amd64/Packages", Encoded: map[format.Encoding]format.Blob{
			format.Raw: blob("a", 1234), format.Gzip: blob("b", 56), format.Xz: blob("c", 78)}},
		{Name: "dists/stable/contrib/binary-arm64/Packages", Encoded: map[format.Encoding]format.Blob{
			format.Raw: blob("d", 0), format.Gzip: blob("e", 20), format.Xz: blob("f", 32)}},
	}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	opts := format.PublishOptions{RepoName: "r", Time: at, Settings: format.Settings{ValidFor: 7 * 24 * time.Hour, Origin: "Example"}}
	files, err := deb.New().Finish(built, opts)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]format.File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	rel := string(byPath["dists/stable/Release"].Data)
	for _, want := range []string{
		"Origin: Example\nLabel: r\nSuite: stable\nCodename: stable\nDate: Sun, 22 Nov 2026 10:00:00 UTC\nValid-Until: Sun, 29 Nov 2026 10:00:00 UTC\n",
		"Architectures: amd64 arm64\nComponents: contrib main\nAcquire-By-Hash: yes\n",
		"MD5Sum:\n " + strings.Repeat("d", 32) + "    0 contrib/binary-arm64/Packages\n",
		"SHA256:\n " + strings.Repeat("d", 64) + "    0 contrib/binary-arm64/Packages\n",
		" " + strings.Repeat("a", 64) + " 1234 main/binary-amd64/Packages\n",
		" " + strings.Repeat("c", 40) + "   78 main/binary-amd64/Packages.xz\n",
	} {
		if !strings.Contains(rel, want) {
			t.Errorf("Release lacks %q:\n%s", want, rel)
		}
	}
	for _, p := range []string{"dists/stable/main/binary-amd64/Packages.gz", "dists/stable/main/binary-amd64/by-hash/SHA256/" + strings.Repeat("b", 64),
		"dists/stable/contrib/binary-arm64/by-hash/SHA256/" + strings.Repeat("f", 64)} {
		if _, ok := byPath[p]; !ok {
			t.Errorf("no file %s", p)
		}
	}
	if _, ok := byPath["dists/stable/InRelease"]; ok {
		t.Error("unsigned publish has an InRelease")
	}
	opts.Signer = stubSigner{}
	files, err = deb.New().Finish(built, opts)
	if err != nil {
		t.Fatal(err)
	}
	byPath = map[string]format.File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	if string(byPath["dists/stable/InRelease"].Data) != "CLEAR\n"+rel || string(byPath["dists/stable/Release.gpg"].Data) != "SIG "+sha256Hex([]byte(rel)) {
		t.Error("InRelease or Release.gpg does not sign the Release file of the same publish")
	}
	// Without MD5/SHA-1 the streams were built wrong: refuse.
	built[0].Encoded[format.Gzip] = format.Blob{SHA256: strings.Repeat("b", 64), Size: 56}
	if _, err := deb.New().Finish(built, opts); err == nil {
		t.Error("Finish accepted a stream without legacy hashes")
	}
}

// TestParseStoredEqualsParse: a mirror's ParseStored, given the digests
// computed while storing the file, yields the stanza Parse does, for
// every compression; it refuses to run without all four digests and
// refuses a malformed file as Parse does.
func TestParseStoredEqualsParse(t *testing.T) {
	f := deb.New()
	params := format.UploadParams{"distribution": "stable", "component": "main"}
	for _, comp := range []string{"gz", "xz", "zst", "none"} {
		s := spec("stored-"+comp, "2:1.0-1", "amd64")
		s.Compression = comp
		data := mustBuild(t, s)
		fi := format.FileInfo{SHA256: sha256Hex(data), Size: int64(len(data))}
		p, err := f.Parse(bytes.NewReader(data), "x.deb", params)
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.Render(p, fi)
		if err != nil {
			t.Fatal(err)
		}
		sums := format.Digests{MD5: md5Hex(data), SHA256: fi.SHA256}
		ps, err := f.ParseStored(bytes.NewReader(data), int64(len(data)), "x.deb", params, sums)
		if err != nil {
			t.Fatal(err)
		}
		if ps.Identity != p.Identity || ps.Path != p.Path || ps.Summary != p.Summary {
			t.Errorf("%s: ParseStored %+v %s, Parse %+v %s", comp, ps.Identity, ps.Path, p.Identity, p.Path)
		}
		got, err := f.Render(ps, fi)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[deb.FragPackages], want[deb.FragPackages]) {
			t.Errorf("%s: stanza from ParseStored:\n%s\nfrom Parse:\n%s", comp, got[deb.FragPackages], want[deb.FragPackages])
		}
		short := sums
		short.MD5 = ""
		if _, err := f.ParseStored(bytes.NewReader(data), int64(len(data)), "x.deb", params, short); err == nil {
			t.Error("ParseStored ran without the MD5")
		}
		cut := data[:len(data)-10]
		if _, err := f.ParseStored(bytes.NewReader(cut), int64(len(cut)), "x.deb", params, sums); !errors.Is(err, format.ErrInvalidPackage) {
			t.Errorf("%s: ParseStored of a truncated file: %v", comp, err)
		}
	}
}

func md5Hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
