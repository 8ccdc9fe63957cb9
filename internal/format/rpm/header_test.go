package rpm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

// malformedWant is the error every rpmtest.Malformed case must produce;
// nil means the input must parse.
var malformedWant = map[string]error{
	"empty":                        ErrNotRPM,
	"truncated-lead-1":             ErrTruncated,
	"truncated-lead-3":             ErrTruncated,
	"truncated-lead-4":             ErrTruncated,
	"truncated-lead-50":            ErrTruncated,
	"truncated-lead-95":            ErrTruncated,
	"lead-only":                    ErrTruncated,
	"truncated-sig-intro":          ErrTruncated,
	"truncated-sig-index":          ErrTruncated,
	"truncated-sig-data":           ErrTruncated,
	"truncated-sig-padding":        ErrTruncated,
	"truncated-hdr-intro":          ErrTruncated,
	"truncated-hdr-index-start":    ErrTruncated,
	"truncated-hdr-index":          ErrTruncated,
	"truncated-hdr-data-start":     ErrTruncated,
	"truncated-hdr-data-middle":    ErrTruncated,
	"truncated-hdr-data-last-byte": ErrTruncated,
	"bad-lead-magic":               ErrNotRPM,
	"bad-lead-version":             ErrCorruptHeader,
	"bad-lead-signature-type":      ErrCorruptHeader,
	"bad-sig-magic":                ErrCorruptHeader,
	"bad-hdr-magic":                ErrCorruptHeader,
	"sig-padding-missing":          ErrCorruptHeader,
	"sig-index-count-lying":        ErrCorruptHeader,
	"sig-index-count-zero":         ErrCorruptHeader,
	"sig-index-count-huge":         ErrHeaderTooLarge,
	"sig-data-length-huge":         ErrHeaderTooLarge,
	"sig-data-length-short":        ErrCorruptHeader,
	"hdr-index-count-lying":        ErrCorruptHeader,
	"hdr-index-count-zero":         ErrCorruptHeader,
	"hdr-index-count-huge":         ErrHeaderTooLarge,
	"hdr-index-count-max":          ErrHeaderTooLarge,
	"hdr-data-length-short":        ErrCorruptHeader,
	"hdr-data-length-long":         ErrCorruptHeader,
	"hdr-data-length-huge":         ErrHeaderTooLarge,
	"hdr-data-length-max":          ErrHeaderTooLarge,
	"tag-offset-past-end":          ErrCorruptHeader,
	"tag-offset-negative":          ErrCorruptHeader,
	"tag-unknown-type":             ErrCorruptHeader,
	"tag-count-zero":               ErrCorruptHeader,
	"tag-number-low":               ErrCorruptHeader,
	"tag-null-type-huge-count":     ErrCorruptHeader,
	"tag-int-count-huge":           ErrCorruptHeader,
	"tag-int-count-over-limit":     ErrCorruptHeader,
	"tag-int-misaligned":           ErrCorruptHeader,
	"tag-string-count-huge":        ErrCorruptHeader,
	"tag-string-count-lying":       ErrCorruptHeader,
	"tag-string-unterminated":      ErrCorruptHeader,
	"tag-string-count-two":         ErrCorruptHeader,
	"tag-overlap":                  ErrCorruptHeader,
	"tag-duplicate":                ErrCorruptHeader,
	"hdr-digest-mismatch":          ErrCorruptHeader,
	"random-bytes":                 ErrNotRPM,
	"random-after-lead":            ErrCorruptHeader,
	"random-headers":               ErrCorruptHeader,
	"control-char-summary":         ErrInvalidMetadata,
	"missing-name":                 ErrInvalidMetadata,
	"name-with-slash":              ErrInvalidMetadata,
	"name-not-a-string":            ErrCorruptHeader,
	"dirindex-out-of-range":        ErrCorruptHeader,
	"file-lists-disagree":          ErrCorruptHeader,
	// ISO-8859-1 is converted, as createrepo_c converts it.
	"invalid-utf8-summary": nil,
	// 100,000 files are within MaxFiles.
	"files-100000": nil,
}

// parseAlloc parses b and returns the bytes allocated meanwhile.
func parseAlloc(b []byte) (*format.Package, uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, err := New().Parse(bytes.NewReader(b), "test.rpm", nil)
	runtime.ReadMemStats(&after)
	return p, after.TotalAlloc - before.TotalAlloc, err
}

func TestMalformed(t *testing.T) {
	valid, err := rpmtest.Build(goldenSpecs()[0])
	if err != nil {
		t.Fatal(err)
	}
	cases := rpmtest.Malformed(valid)
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		t.Run(name, func(t *testing.T) {
			input := cases[name]
			want, known := malformedWant[name]
			if !known {
				t.Fatalf("no expectation for rpmtest.Malformed case %q", name)
			}
			p, alloc, err := parseAlloc(input)
			// Allocation stays within a small multiple of the input
			// (plus a constant), whatever the header claims.
			if limit := uint64(1<<20 + 40*len(input)); alloc > limit {
				t.Errorf("Parse allocated %d bytes for a %d-byte input, limit %d", alloc, len(input), limit)
			}
			if want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				checkRender(t, p)
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want %v", want)
			}
			if !errors.Is(err, want) {
				t.Errorf("Parse error %q is not %q", err, want)
			}
			if !errors.Is(err, format.ErrInvalidPackage) && !errors.Is(err, format.ErrPackageTooLarge) {
				t.Errorf("Parse error %q wraps neither ErrInvalidPackage nor ErrPackageTooLarge", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "rpm: ") || strings.Contains(msg, "%!") || len(msg) > 300 {
				t.Errorf("unclear message %q", msg)
			}
		})
	}
	for name := range malformedWant {
		if _, ok := cases[name]; !ok && name != "truncated-sig-padding" {
			t.Errorf("rpmtest.Malformed has no case %q", name)
		}
	}
}

func TestInvalidUTF8IsConverted(t *testing.T) {
	cases := rpmtest.Malformed(mustBuild(t, goldenSpecs()[0]))
	p, err := New().Parse(bytes.NewReader(cases["invalid-utf8-summary"]), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "café crème brûlée"; p.Summary != want {
		t.Errorf("Summary = %q, want %q", p.Summary, want)
	}
}

func mustBuild(t testing.TB, s rpmtest.Spec) []byte {
	t.Helper()
	b, err := rpmtest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkRender renders p and checks that every fragment is well-formed
// UTF-8 XML.
func checkRender(t testing.TB, p *format.Package) {
	t.Helper()
	fr, err := New().Render(p, format.FileInfo{SHA256: strings.Repeat("ab", 32), Size: 1, Time: fileTime})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	for kind, b := range fr {
		if !utf8.Valid(b) {
			t.Fatalf("%s fragment is not UTF-8: %q", kind, b)
		}
		doc := `<root xmlns:rpm="http://linux.duke.edu/metadata/rpm">` + string(b) + `</root>`
		d := xml.NewDecoder(strings.NewReader(doc))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s fragment is not well-formed XML: %v\n%s", kind, err, b)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds headers of tens of megabytes")
	}
	tests := []struct {
		name        string
		files, deps int
		want        error
	}{
		{"files", MaxFiles + 1, 0, ErrTooManyFiles},
		{"dependencies", 0, MaxDependencies + 1, ErrTooManyDependencies},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := rpmtest.Huge(tt.files, tt.deps)
			cr := &countingReader{r: bytes.NewReader(b)}
			_, err := New().Parse(cr, "", nil)
			if !errors.Is(err, tt.want) || !errors.Is(err, format.ErrPackageTooLarge) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			// The limit is checked on the index, before the data is read.
			if cr.n > 64<<10 {
				t.Errorf("Parse read %d bytes before refusing", cr.n)
			}
		})
	}
}

// TestManyFiles parses a package within the limits but far larger than
// usual, and checks time and memory stay proportional.
func TestManyFiles(t *testing.T) {
	b := rpmtest.Huge(100_000, 100_000)
	p, alloc, err := parseAlloc(b)
	if err != nil {
		t.Fatal(err)
	}
	if limit := uint64(12 * len(b)); alloc > limit {
		t.Errorf("Parse allocated %d bytes for a %d-byte header, limit %d", alloc, len(b), limit)
	}
	d := p.Data.(*pkgData)
	if len(d.files) != 100_000 || len(d.deps[listRequires]) != 100_000 {
		t.Errorf("got %d files and %d requirements", len(d.files), len(d.deps[listRequires]))
	}
	checkRender(t, p)
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestParseReadsOnlyHeaders checks that Parse stops at the payload and
// copes with short reads.
func TestParseReadsOnlyHeaders(t *testing.T) {
	valid := mustBuild(t, goldenSpecs()[0])
	want, err := New().Parse(bytes.NewReader(valid), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	end := int(want.Data.(*pkgData).hdrEnd)
	if end >= len(valid) {
		t.Fatalf("header end %d is not before the payload (file %d bytes)", end, len(valid))
	}
	readers := map[string]io.Reader{
		"payload-fails": io.MultiReader(bytes.NewReader(valid[:end]), iotest.ErrReader(errors.New("payload must not be read"))),
		"one-byte":      iotest.OneByteReader(bytes.NewReader(valid)),
		"half":          iotest.HalfReader(bytes.NewReader(valid)),
		"data-err":      iotest.DataErrReader(bytes.NewReader(valid[:end])),
	}
	for name, r := range readers {
		cr := &countingReader{r: r}
		got, err := New().Parse(cr, "", nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if cr.n != end {
			t.Errorf("%s: read %d bytes, want exactly the %d bytes of lead and headers", name, cr.n, end)
		}
		if got.Identity != want.Identity || got.Path != want.Path {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}

// TestReadError checks that an I/O error is not reported as an invalid
// package.
func TestReadError(t *testing.T) {
	valid := mustBuild(t, goldenSpecs()[0])
	boom := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(valid[:500]), iotest.ErrReader(boom))
	_, err := New().Parse(r, "", nil)
	if !errors.Is(err, boom) || errors.Is(err, format.ErrInvalidPackage) {
		t.Fatalf("Parse = %v, want the read error and no ErrInvalidPackage", err)
	}
}

func TestSentinels(t *testing.T) {
	for _, e := range []error{ErrNotRPM, ErrTruncated, ErrCorruptHeader, ErrInvalidMetadata} {
		if !errors.Is(e, format.ErrInvalidPackage) || errors.Is(e, format.ErrPackageTooLarge) {
			t.Errorf("%v should be an invalid package only", e)
		}
	}
	for _, e := range []error{ErrHeaderTooLarge, ErrTooManyFiles, ErrTooManyDependencies} {
		if !errors.Is(e, format.ErrPackageTooLarge) || errors.Is(e, format.ErrInvalidPackage) {
			t.Errorf("%v should be a too-large package only", e)
		}
	}
}

// FuzzParse feeds Parse valid, malformed and mutated packages. Parse must
// not panic; it either fails with an error of this package's kinds or
// returns a package whose fragments are well-formed XML.
func FuzzParse(f *testing.F) {
	// Small seeds keep the fuzzer fast, minimisation included.
	specs := goldenSpecs()
	for _, i := range []int{0, 1, 3, 8} {
		f.Add(mustBuild(f, specs[i]))
	}
	f.Add(rpmtest.NoDigest())
	for _, b := range rpmtest.Legacy() {
		f.Add(b)
	}
	for _, b := range rpmtest.Malformed(mustBuild(f, specs[4])) {
		if len(b) <= 2048 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := New().Parse(bytes.NewReader(data), "fuzz.rpm", nil)
		if err != nil {
			if !errors.Is(err, format.ErrInvalidPackage) && !errors.Is(err, format.ErrPackageTooLarge) {
				t.Fatalf("error of unknown kind: %v", err)
			}
			return
		}
		if p.Path == "" || strings.Contains(strings.TrimPrefix(p.Path, "Packages/"), "..") && strings.Contains(p.Name, "/") {
			t.Fatalf("bad path %q", p.Path)
		}
		checkRender(t, p)
	})
}

func TestGuard(t *testing.T) {
	err := guard(func() error { panic("index out of range") })
	if err == nil || !strings.Contains(err.Error(), "index out of range") {
		t.Fatalf("guard = %v, want the panic as an error", err)
	}
	h := &hdr{}
	h.wrap(1000, err)
	if !errors.Is(h.err, ErrCorruptHeader) {
		t.Fatalf("wrapped panic %v is not ErrCorruptHeader", h.err)
	}
}
