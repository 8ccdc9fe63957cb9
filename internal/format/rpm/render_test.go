package rpm

import (
	"bytes"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

// TestEscape checks the escaping against what libxml2 2.9 writes for
// createrepo_c (observed on createrepo_c 0.17.3 output).
func TestEscape(t *testing.T) {
	tests := []struct {
		in, text, attr string
	}{
		{"plain", "plain", "plain"},
		{`a&b<c>d"e'f`, `a&amp;b&lt;c&gt;d"e'f`, `a&amp;b&lt;c&gt;d&quot;e'f`},
		{"t\tn\nr\r", "t\tn\nr&#13;", "t&#9;n&#10;r&#13;"},
		{"ü€😀", "ü€😀", "&#xFC;&#x20AC;&#x1F600;"},
		{"]]>", "]]&gt;", "]]&gt;"},
		{"\u007f\u0085", "\u007f\u0085", "\u007f&#x85;"},
		{"\ufffe", "\ufffe", "&#xEF;&#xBF;&#xBE;"},
	}
	for _, tt := range tests {
		if got := string(appendText(nil, tt.in)); got != tt.text {
			t.Errorf("appendText(%q) = %q, want %q", tt.in, got, tt.text)
		}
		if got := string(appendAttr(nil, tt.in)); got != tt.attr {
			t.Errorf("appendAttr(%q) = %q, want %q", tt.in, got, tt.attr)
		}
	}
}

func TestLatin1ToUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"caf\xe9", "café"},
		{"\x85\x9f\xa0\xbf", ""},
		{"\xc0\xff", "Àÿ"},
		{"ok\x01\t", "ok\t"},
		{"\xc3\xa9", "Ã"},
	}
	for _, tt := range tests {
		if got := latin1ToUTF8(tt.in); got != tt.want {
			t.Errorf("latin1ToUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitEVR(t *testing.T) {
	tests := []struct {
		in              string
		epoch, ver, rel string
		ok              bool
	}{
		{"", "", "", "", true},
		{"1.0", "0", "1.0", "", true},
		{"1.0-2", "0", "1.0", "2", true},
		{"3:1.0-2", "3", "1.0", "2", true},
		{":1.0", "0", "1.0", "", true},
		{" 5:1", " 5", "1", "", true},
		{"+5:1", "+5", "1", "", true},
		{"-5:1", "-5", "1", "", true},
		{"5:", "5", "", "", true},
		{"1-2-3", "0", "1", "2-3", true},
		{"1.0-", "0", "1.0", "", true},
		{"a:1", "", "", "", false},
		{"0x1:1", "", "", "", false},
		{" :1", "", "", "", false},
		{"+:1", "", "", "", false},
		{"1:2:3", "1", "2:3", "", true},
	}
	for _, tt := range tests {
		e, v, r, ok := splitEVR(tt.in)
		if e != tt.epoch || v != tt.ver || r != tt.rel || ok != tt.ok {
			t.Errorf("splitEVR(%q) = %q, %q, %q, %v; want %q, %q, %q, %v", tt.in, e, v, r, ok, tt.epoch, tt.ver, tt.rel, tt.ok)
		}
	}
}

func TestCompareLibc(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"libc.so.6", "libc.so.6", 0},
		{"libc.so.6", "libc.so.6()(64bit)", 2},
		{"libc.so.6()(64bit)", "libc.so.6", 1},
		{"libc.so.6()(64bit)", "libc.so.6(GLIBC_2.2.5)(64bit)", 2},
		{"libc.so.6(GLIBC_2.34)(64bit)", "libc.so.6(GLIBC_2.4)(64bit)", 1},
		{"libc.so.6(GLIBC_2.4)", "libc.so.6(GLIBC_2.17)", 2},
		{"libc.so.6(GLIBC_PRIVATE)", "libc.so.6(GLIBC_2.4)", 2},
		{"libc.so.6(x", "libc.so.6(y", -1},
		{"libc.so.6(2.1)", "libc.so.6(2.1)", 0},
	}
	for _, tt := range tests {
		if got := compareLibc(tt.a, tt.b); got != tt.want {
			t.Errorf("compareLibc(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestRenderForeignPackage(t *testing.T) {
	_, err := New().Render(&format.Package{Identity: format.Identity{Name: "x"}, Data: "not rpm"}, format.FileInfo{})
	if err == nil {
		t.Fatal("Render accepted a package it did not parse")
	}
}

func TestIdentityAndPath(t *testing.T) {
	tests := []struct {
		spec rpmtest.Spec
		want format.Identity
		path string
	}{
		{rpmtest.Spec{Name: "Foo", Version: "1.0", Release: "1.el9", Arch: "x86_64"}, format.Identity{Name: "Foo", Epoch: "0", Version: "1.0", Release: "1.el9", Arch: "x86_64"}, "Packages/f/Foo-1.0-1.el9.x86_64.rpm"},
		{rpmtest.Spec{Name: "bar", Version: "2", Release: "3", Epoch: 7, HasEpoch: true, Arch: "noarch"}, format.Identity{Name: "bar", Epoch: "7", Version: "2", Release: "3", Arch: "noarch"}, "Packages/b/bar-2-3.noarch.rpm"},
		{rpmtest.Spec{Name: "src", Version: "2", Release: "3", Arch: "x86_64", Source: true}, format.Identity{Name: "src", Epoch: "0", Version: "2", Release: "3", Arch: "src"}, "Packages/s/src-2-3.src.rpm"},
		{rpmtest.Spec{Name: "Ünï", Version: "1", Release: "1", Arch: "noarch", Summary: "sum"}, format.Identity{Name: "Ünï", Epoch: "0", Version: "1", Release: "1", Arch: "noarch"}, "Packages/ü/Ünï-1-1.noarch.rpm"},
	}
	f := New()
	for _, tt := range tests {
		tt.spec.BuildTime = time.Unix(1700000000, 0)
		p, err := f.Parse(bytes.NewReader(mustBuild(t, tt.spec)), "", nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.spec.Name, err)
		}
		if p.Identity != tt.want || p.Path != tt.path {
			t.Errorf("%s: got %+v %q, want %+v %q", tt.spec.Name, p.Identity, p.Path, tt.want, tt.path)
		}
		if s, err := f.Scope(p, nil); s != "" || err != nil {
			t.Errorf("Scope = %q, %v", s, err)
		}
	}
	if f.Name() != "rpm" {
		t.Errorf("Name = %q", f.Name())
	}
}

func BenchmarkParse(b *testing.B) {
	pkg := mustBuild(b, goldenSpecs()[0])
	f := New()
	b.SetBytes(int64(len(pkg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Parse(bytes.NewReader(pkg), "", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	f := New()
	p, err := f.Parse(bytes.NewReader(mustBuild(b, goldenSpecs()[0])), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	fi := format.FileInfo{SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Size: 4242, Time: time.Unix(1700000000, 0)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Render(p, fi); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDepTagsIndexedByKind(t *testing.T) {
	for i, dt := range depTags {
		if dt.kind != i {
			t.Errorf("depTags[%d] is kind %d", i, dt.kind)
		}
	}
}
