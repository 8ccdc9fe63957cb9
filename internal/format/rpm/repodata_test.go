package rpm

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packyard/packyard/internal/format"
)

func TestStreams(t *testing.T) {
	streams := New().Streams([]*format.Entry{{ID: 1, Arch: "x86_64", Path: "Packages/a/a-1-1.x86_64.rpm"}}, format.PublishOptions{})
	want := []struct {
		name, header, footer string
	}{
		{Primary, `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm">` + "\n", "</metadata>"},
		{Filelists, `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<filelists xmlns="http://linux.duke.edu/metadata/filelists">` + "\n", "</filelists>"},
		{Other, `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<otherdata xmlns="http://linux.duke.edu/metadata/other">` + "\n", "</otherdata>"},
	}
	if len(streams) != len(want) {
		t.Fatalf("got %d streams, want %d", len(streams), len(want))
	}
	for i, w := range want {
		s := streams[i]
		if s.Name != w.name || s.Fragment != w.name {
			t.Errorf("stream %d is %q of %q fragments, want %q", i, s.Name, s.Fragment, w.name)
		}
		if got := string(s.Header(3)); got != w.header {
			t.Errorf("%s header = %q, want %q", s.Name, got, w.header)
		}
		if got := string(s.Footer); got != w.footer {
			t.Errorf("%s footer = %q, want %q", s.Name, got, w.footer)
		}
		if s.Match != nil {
			t.Errorf("%s: Match should select every entry", s.Name)
		}
		if !cmp.Equal(s.Encodings, []format.Encoding{format.Gzip}) {
			t.Errorf("%s encodings = %v, want gzip", s.Name, s.Encodings)
		}
		// An empty stream is a well-formed document.
		empty := string(s.Header(0)) + string(s.Footer)
		if err := xml.Unmarshal([]byte(empty), new(struct{})); err != nil {
			t.Errorf("%s: empty document %q: %v", s.Name, empty, err)
		}
	}
}

func built(name string, n int) format.Built {
	return format.Built{
		Name: name,
		Raw:  format.Blob{SHA256: strings.Repeat("r", 63) + string(rune('0'+n)), Size: int64(1000 + n)},
		Encoded: map[format.Encoding]format.Blob{
			format.Gzip: {SHA256: strings.Repeat("g", 63) + string(rune('0'+n)), Size: int64(100 + n)},
		},
	}
}

func TestFinish(t *testing.T) {
	f := New()
	files, err := f.Finish([]format.Built{built(Other, 3), built(Primary, 1), built(Filelists, 2)},
		format.PublishOptions{RepoName: "r", Time: time.Unix(1700000000, 0), Revision: 42})
	if err != nil {
		t.Fatal(err)
	}
	g := func(n int) string { return strings.Repeat("g", 63) + string(rune('0'+n)) }
	wantFiles := []format.File{
		{Path: "repodata/" + g(1) + "-primary.xml.gz", ContentType: "application/gzip", SHA256: g(1), Size: 101},
		{Path: "repodata/" + g(2) + "-filelists.xml.gz", ContentType: "application/gzip", SHA256: g(2), Size: 102},
		{Path: "repodata/" + g(3) + "-other.xml.gz", ContentType: "application/gzip", SHA256: g(3), Size: 103},
	}
	if len(files) != 4 {
		t.Fatalf("got %d files, want 4", len(files))
	}
	if diff := cmp.Diff(wantFiles, files[:3]); diff != "" {
		t.Errorf("stream files (-want +got):\n%s", diff)
	}
	md := files[3]
	if md.Path != RepomdPath || md.ContentType != "application/xml" || md.SHA256 != "" {
		t.Errorf("repomd file = %+v", md)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>42</revision>
` + dataElem("primary", 1) + dataElem("filelists", 2) + dataElem("other", 3) + "</repomd>\n"
	if diff := cmp.Diff(want, string(md.Data)); diff != "" {
		t.Errorf("repomd.xml (-want +got):\n%s", diff)
	}
}

func dataElem(name string, n int) string {
	g := strings.Repeat("g", 63) + string(rune('0'+n))
	r := strings.Repeat("r", 63) + string(rune('0'+n))
	return `  <data type="` + name + `">
    <checksum type="sha256">` + g + `</checksum>
    <open-checksum type="sha256">` + r + `</open-checksum>
    <location href="repodata/` + g + `-` + name + `.xml.gz"/>
    <timestamp>1700000000</timestamp>
    <size>10` + string(rune('0'+n)) + `</size>
    <open-size>100` + string(rune('0'+n)) + `</open-size>
  </data>
`
}

func TestFinishErrors(t *testing.T) {
	f := New()
	noGzip := built(Other, 3)
	noGzip.Encoded = map[format.Encoding]format.Blob{format.Zstd: {SHA256: "x", Size: 1}}
	for name, in := range map[string][]format.Built{
		"missing stream": {built(Primary, 1), built(Filelists, 2)},
		"no gzip":        {built(Primary, 1), built(Filelists, 2), noGzip},
	} {
		if _, err := f.Finish(in, format.PublishOptions{}); err == nil {
			t.Errorf("%s: Finish succeeded", name)
		}
	}
}
