package rpm

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"flag"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// requireTool finds a program the test needs. When it is missing the test
// is skipped, unless PACKYARD_REQUIRE_REAL=1 makes that a failure.
func requireTool(t *testing.T, name string) string {
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

// fileTime is the modification time of every package in the test
// repositories: createrepo_c's time/@file.
var fileTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// testPkg is one package of a test repository.
type testPkg struct {
	pkg       *format.Package
	info      format.FileInfo
	fragments map[string][]byte
}

// loadRepo parses and renders every package in dir (recursively), as the
// repository service would after an upload.
func loadRepo(t *testing.T, dir string) []*testPkg {
	t.Helper()
	f := New()
	var pkgs []*testPkg
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(path, ".rpm") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		p, err := f.Parse(bytes.NewReader(b), filepath.Base(path), nil)
		if err != nil {
			t.Errorf("Parse(%s): %v", path, err)
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if rel != p.Path {
			t.Errorf("%s: Path = %q, want the file's place %q", path, p.Path, rel)
		}
		sum := sha256.Sum256(b)
		fi := format.FileInfo{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)), Time: fileTime}
		fr, err := f.Render(p, fi)
		if err != nil {
			t.Fatalf("Render(%s): %v", path, err)
		}
		pkgs = append(pkgs, &testPkg{pkg: p, info: fi, fragments: fr})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(pkgs, func(a, b *testPkg) int { return strings.Compare(a.pkg.Path, b.pkg.Path) })
	return pkgs
}

// assemble concatenates a stream as the repository service does: header,
// the fragments of the entries in order, footer.
func assemble(s format.Stream, pkgs []*testPkg) []byte {
	var b bytes.Buffer
	b.Write(s.Header(len(pkgs)))
	for _, p := range pkgs {
		b.Write(p.fragments[s.Fragment])
	}
	b.Write(s.Footer)
	return b.Bytes()
}

// placePackage writes an RPM into repo at the path Parse chooses for it.
func placePackage(t *testing.T, repo string, b []byte) {
	t.Helper()
	p, err := New().Parse(bytes.NewReader(b), "", nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	path := filepath.Join(repo, p.Path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fileTime, fileTime); err != nil {
		t.Fatal(err)
	}
}

// createrepoOutput is what createrepo_c wrote.
type createrepoOutput struct {
	repomd []byte
	// streams holds the decompressed primary, filelists and other.
	streams map[string][]byte
	// gz holds the compressed files.
	gz map[string][]byte
}

func runCreaterepo(t *testing.T, bin, repo string) createrepoOutput {
	t.Helper()
	cmd := exec.Command(bin, "--no-database", "--workers=2", repo)
	// Translated summaries and descriptions: the C locale picks the
	// untranslated text, as Parse does.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANGUAGE=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	out := createrepoOutput{streams: map[string][]byte{}, gz: map[string][]byte{}}
	var err error
	out.repomd, err = os.ReadFile(filepath.Join(repo, "repodata", "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var md xRepomd
	if err := xml.Unmarshal(out.repomd, &md); err != nil {
		t.Fatal(err)
	}
	for _, d := range md.Data {
		gz, err := os.ReadFile(filepath.Join(repo, d.Location.Href))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		out.streams[d.Type], out.gz[d.Type] = raw, gz
	}
	return out
}

// buildWithRpmbuild builds the spec files of rpmbuildSpecs with the real
// rpmbuild and returns the binary and source packages.
func buildWithRpmbuild(t *testing.T, bin string) [][]byte {
	t.Helper()
	top := t.TempDir()
	var out [][]byte
	for name, spec := range rpmbuildSpecs {
		specPath := filepath.Join(top, name+".spec")
		if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-ba", "--nodeps",
			"--define", "_topdir "+top,
			"--define", "_build_id_links none",
			"--define", "debug_package %{nil}",
			specPath)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "SOURCE_DATE_EPOCH=1700000000")
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rpmbuild %s: %v\n%s", name, err, o)
		}
	}
	for _, sub := range []string{"RPMS", "SRPMS"} {
		err := filepath.WalkDir(filepath.Join(top, sub), func(path string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			out = append(out, b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestCreaterepoGolden builds a repository of rpmtest and rpmbuild
// packages, runs createrepo_c on it and compares createrepo_c's
// primary.xml, filelists.xml, other.xml and repomd.xml with what this
// package assembles: semantically field by field, and byte for byte.
func TestCreaterepoGolden(t *testing.T) {
	createrepo := requireTool(t, "createrepo_c")
	repo := t.TempDir()
	specs := goldenSpecs()
	if len(specs) < 20 {
		t.Fatalf("golden corpus has %d packages, want at least 20", len(specs))
	}
	for _, s := range specs {
		b, err := rpmtest.Build(s)
		if err != nil {
			t.Fatalf("Build(%s): %v", s.Name, err)
		}
		placePackage(t, repo, b)
	}
	for _, b := range rpmtest.Legacy() {
		placePackage(t, repo, b)
	}
	if rpmbuild, err := exec.LookPath("rpmbuild"); err == nil {
		built := buildWithRpmbuild(t, rpmbuild)
		if len(built) < 3 {
			t.Fatalf("rpmbuild made %d packages, want at least 3", len(built))
		}
		for _, b := range built {
			placePackage(t, repo, b)
		}
	} else if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
		t.Fatalf("rpmbuild not found and PACKYARD_REQUIRE_REAL=1: %v", err)
	} else {
		t.Logf("rpmbuild not found, comparing rpmtest packages only: %v", err)
	}

	pkgs := loadRepo(t, repo)
	t.Logf("comparing %d packages", len(pkgs))
	cr := runCreaterepo(t, createrepo, repo)
	f := New()
	streams := f.Streams(nil, format.PublishOptions{})

	for _, s := range streams {
		theirs, ok := cr.streams[s.Name]
		if !ok {
			t.Fatalf("createrepo_c wrote no %s", s.Name)
		}
		ours := assemble(s, pkgs)
		// packyard omits the root's packages="N" count on purpose (see
		// the package comment); every other byte is compared.
		compareSemantic(t, s.Name, withoutCount(theirs), ours)
		compareBytes(t, s, theirs, pkgs)
	}
	compareRepomd(t, f, cr)
}

// compareSemantic decodes both documents and compares them field by field,
// packages in href/pkgid order.
func compareSemantic(t *testing.T, name string, theirs, ours []byte) {
	t.Helper()
	switch name {
	case Primary:
		var a, b xPrimary
		decode(t, name+" (createrepo_c)", theirs, &a)
		decode(t, name+" (packyard)", ours, &b)
		for _, m := range []*xPrimary{&a, &b} {
			slices.SortFunc(m.Packages, func(x, y xPackage) int { return strings.Compare(x.Location.Href, y.Location.Href) })
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("primary.xml differs (-createrepo_c +packyard):\n%s", diff)
		}
	case Filelists:
		var a, b xFilelists
		decode(t, name+" (createrepo_c)", theirs, &a)
		decode(t, name+" (packyard)", ours, &b)
		for _, m := range []*xFilelists{&a, &b} {
			slices.SortFunc(m.Packages, func(x, y xFilelistsPackage) int { return strings.Compare(x.PkgID, y.PkgID) })
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("filelists.xml differs (-createrepo_c +packyard):\n%s", diff)
		}
	case Other:
		var a, b xOther
		decode(t, name+" (createrepo_c)", theirs, &a)
		decode(t, name+" (packyard)", ours, &b)
		for _, m := range []*xOther{&a, &b} {
			slices.SortFunc(m.Packages, func(x, y xOtherPackage) int { return strings.Compare(x.PkgID, y.PkgID) })
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("other.xml differs (-createrepo_c +packyard):\n%s", diff)
		}
	}
}

func decode(t *testing.T, what string, b []byte, v any) {
	t.Helper()
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", what, err)
	}
}

// compareBytes checks that every package's fragment is byte for byte the
// element createrepo_c wrote for it, and that the whole stream assembled in
// createrepo_c's package order is createrepo_c's file.
func compareBytes(t *testing.T, s format.Stream, theirs []byte, pkgs []*testPkg) {
	t.Helper()
	theirs = withoutCount(theirs)
	head, chunks, foot := splitPackages(theirs)
	if want := s.Header(len(pkgs)); !bytes.Equal(head, want) {
		t.Errorf("%s header:\ncreaterepo_c %q\npackyard     %q", s.Name, head, want)
	}
	if !bytes.Equal(foot, s.Footer) {
		t.Errorf("%s footer:\ncreaterepo_c %q\npackyard     %q", s.Name, foot, s.Footer)
	}
	byID := make(map[string]*testPkg, len(pkgs))
	for _, p := range pkgs {
		byID[p.info.SHA256] = p
	}
	var ordered []*testPkg
	for _, c := range chunks {
		id := chunkID(c)
		p, ok := byID[id]
		if !ok {
			t.Errorf("%s: createrepo_c lists a package %s that packyard does not have", s.Name, id)
			continue
		}
		ordered = append(ordered, p)
		if got := p.fragments[s.Fragment]; !bytes.Equal(got, c) {
			t.Errorf("%s fragment of %s differs:\n%s", s.Name, p.pkg.Path, cmp.Diff(string(c), string(got)))
		}
	}
	if len(chunks) != len(pkgs) {
		t.Errorf("%s: createrepo_c lists %d packages, packyard %d", s.Name, len(chunks), len(pkgs))
	}
	if !t.Failed() && !bytes.Equal(assemble(s, ordered), theirs) {
		t.Errorf("%s assembled in createrepo_c's order differs from createrepo_c's file", s.Name)
	}
}

// countAttr is createrepo_c's packages="N" attribute on the root element,
// which packyard deliberately omits (see the package comment).
var countAttr = regexp.MustCompile(`^(<\?xml[^\n]*\n<[a-z]+ [^>\n]*?) packages="[0-9]+"`)

// withoutCount removes the packages="N" attribute from a metadata file.
func withoutCount(b []byte) []byte {
	return countAttr.ReplaceAll(b, []byte("$1"))
}

// splitPackages splits a metadata file into its header, its <package>
// elements (each with its newline) and its footer.
func splitPackages(b []byte) (head []byte, chunks [][]byte, foot []byte) {
	const open, end = "\n<package ", "</package>\n"
	i := bytes.Index(b, []byte(open))
	if i < 0 {
		j := bytes.LastIndexByte(b, '\n')
		return b[:j+1], nil, b[j+1:]
	}
	head, b = b[:i+1], b[i+1:]
	for bytes.HasPrefix(b, []byte("<package ")) {
		k := bytes.Index(b, []byte(end))
		if k < 0 {
			break
		}
		chunks = append(chunks, b[:k+len(end)])
		b = b[k+len(end):]
	}
	return head, chunks, b
}

// chunkID returns the package checksum a <package> element carries, as
// pkgid="…" or in <checksum>.
func chunkID(c []byte) string {
	for _, marker := range []string{`pkgid="`, `pkgid="YES">`} {
		if i := bytes.Index(c, []byte(marker)); i >= 0 && len(c) >= i+len(marker)+64 {
			id := string(c[i+len(marker) : i+len(marker)+64])
			if _, err := hex.DecodeString(id); err == nil {
				return id
			}
		}
	}
	return ""
}

// compareRepomd gives Finish the sizes and digests of createrepo_c's own
// files and its revision and timestamp, and expects its repomd.xml.
func compareRepomd(t *testing.T, f *Format, cr createrepoOutput) {
	t.Helper()
	var md xRepomd
	decode(t, "repomd.xml", cr.repomd, &md)
	var built []format.Built
	for _, s := range f.Streams(nil, format.PublishOptions{}) {
		raw, gz := cr.streams[s.Name], cr.gz[s.Name]
		rs, gs := sha256.Sum256(raw), sha256.Sum256(gz)
		built = append(built, format.Built{
			Name:    s.Name,
			Raw:     format.Blob{SHA256: hex.EncodeToString(rs[:]), Size: int64(len(raw))},
			Encoded: map[format.Encoding]format.Blob{format.Gzip: {SHA256: hex.EncodeToString(gs[:]), Size: int64(len(gz))}},
		})
	}
	ts := md.Data[0].Timestamp
	for _, d := range md.Data {
		if d.Timestamp != ts {
			t.Skipf("createrepo_c wrote files in different seconds (%d, %d); repomd.xml cannot be compared", ts, d.Timestamp)
		}
	}
	files, err := f.Finish(built, format.PublishOptions{RepoName: "golden", Time: time.Unix(ts, 0), Revision: md.Revision})
	if err != nil {
		t.Fatal(err)
	}
	var repomd []byte
	for _, fl := range files {
		if fl.Path == RepomdPath {
			repomd = fl.Data
			continue
		}
		if fl.Data != nil || fl.SHA256 == "" || fl.Size == 0 || fl.ContentType != "application/gzip" ||
			!strings.HasPrefix(fl.Path, "repodata/"+fl.SHA256+"-") || !strings.HasSuffix(fl.Path, ".xml.gz") {
			t.Errorf("file %+v: want a reference to a gzip blob under its digest", fl)
		}
	}
	if diff := cmp.Diff(string(cr.repomd), string(repomd)); diff != "" {
		t.Errorf("repomd.xml differs (-createrepo_c +packyard):\n%s", diff)
	}
}

// Golden files: the exact fragments of a few fixed packages.
func TestGoldenFragments(t *testing.T) {
	fi := format.FileInfo{
		SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Size:   4242,
		Time:   time.Unix(1700000000, 0),
	}
	want := map[string]bool{"alpha": true, "beta-latin1": true, "delta-deps": true, "iota-changelog": true}
	f := New()
	for _, s := range goldenSpecs() {
		if !want[s.Name] {
			continue
		}
		b, err := rpmtest.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.Parse(bytes.NewReader(b), s.Name+".rpm", nil)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := f.Render(p, fi)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{Primary, Filelists, Other} {
			path := filepath.Join("testdata", "golden", s.Name+"."+kind+".xml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, fr[kind], 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(golden), string(fr[kind])); diff != "" {
				t.Errorf("%s differs from %s (-golden +got):\n%s", kind, path, diff)
			}
		}
	}
}
