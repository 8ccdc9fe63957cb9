package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

// builtRPM is a package file built for a test.
type builtRPM struct {
	name, epoch, version, release, arch string
	file                                string // canonical file name
	data                                []byte
	sha256                              string
}

// nevra is the name-version-release.arch rpm -q prints.
func (p builtRPM) nevra() string {
	return p.name + "-" + p.version + "-" + p.release + "." + p.arch
}

// pkgOpts vary a test package.
type pkgOpts struct {
	requires []rpmtest.Dep
	provides []rpmtest.Dep
	// payload adds a file of this many incompressible bytes.
	payload int
}

// buildRPM builds a realistic, self-contained noarch package: a program in
// /usr/bin, a config file in /etc, documentation, the config() provide that
// rpmbuild adds, and a changelog. It has no scriptlets and requires nothing
// beyond what opts lists, so dnf can install it into an empty installroot.
func buildRPM(t testing.TB, name, version string, opts pkgOpts) builtRPM {
	t.Helper()
	const release, arch = "1", "noarch"
	evr := version + "-" + release
	bt := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	files := []rpmtest.File{
		{Path: "/usr/bin/" + name, Mode: 0o755, Body: []byte("#!/bin/false\n# " + name + " " + evr + "\n")},
		{Path: "/etc/" + name + ".conf", Mode: 0o644, Config: true, Body: []byte("# " + name + " configuration\nversion = " + version + "\n")},
		{Path: "/usr/share/doc/" + name, Mode: 0o755, Dir: true},
		{Path: "/usr/share/doc/" + name + "/README", Mode: 0o644, Doc: true, Body: []byte(name + " is a packyard end-to-end test package.\n")},
	}
	if opts.payload > 0 {
		// Seeded by the name so a package's bytes are reproducible.
		seed := sha256.Sum256([]byte(name + evr))
		rng := rand.NewChaCha8(seed)
		body := make([]byte, opts.payload)
		_, _ = rng.Read(body)
		files = append(files,
			rpmtest.File{Path: "/usr/share/" + name, Mode: 0o755, Dir: true},
			rpmtest.File{Path: "/usr/share/" + name + "/payload.bin", Mode: 0o644, Body: body})
	}
	spec := rpmtest.Spec{
		Name: name, Version: version, Release: release, Arch: arch,
		Summary:     "packyard e2e package " + name,
		Description: "A package built by the packyard end-to-end tests.\nIt installs " + name + " and its configuration.",
		License:     "MIT", URL: "https://example.test/" + name, Vendor: "packyard e2e",
		Packager: "packyard e2e <e2e@example.test>", Group: "Applications/System",
		BuildHost: "e2e.example.test", BuildTime: bt,
		Files:     files,
		Provides:  append([]rpmtest.Dep{{Name: "config(" + name + ")", Flags: rpmtest.Equal, Version: evr}}, opts.provides...),
		Requires:  opts.requires,
		Changelog: []rpmtest.Change{{Time: bt, Author: "packyard e2e <e2e@example.test> - " + evr, Text: "- build " + evr}},
	}
	return buildSpec(t, spec)
}

// buildSpec builds the package a spec describes.
func buildSpec(t testing.TB, spec rpmtest.Spec) builtRPM {
	t.Helper()
	data, err := rpmtest.Build(spec)
	if err != nil {
		t.Fatalf("build %s-%s: %v", spec.Name, spec.EVR(), err)
	}
	p := builtRPM{name: spec.Name, epoch: "0", version: spec.Version, release: spec.Release, arch: spec.Arch, data: data, sha256: sha256hex(data)}
	if spec.HasEpoch {
		p.epoch = fmt.Sprint(spec.Epoch)
	}
	p.file = p.nevra() + ".rpm"
	return p
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// repomd is the part of repodata/repomd.xml the tests read.
type repomd struct {
	Revision string       `xml:"revision"`
	Data     []repomdData `xml:"data"`
}

type repomdData struct {
	Type         string   `xml:"type,attr"`
	Checksum     checksum `xml:"checksum"`
	OpenChecksum checksum `xml:"open-checksum"`
	Location     location `xml:"location"`
	Size         int64    `xml:"size"`
	OpenSize     int64    `xml:"open-size"`
}

type checksum struct {
	Type  string `xml:"type,attr"`
	Value string `xml:",chardata"`
}

type location struct {
	Href string `xml:"href,attr"`
}

// primaryXML is the part of primary.xml the tests read.
type primaryXML struct {
	// Count is the packages="N" attribute, which packyard omits on purpose
	// (internal/format/rpm's package comment says why).
	Count    *int             `xml:"packages,attr"`
	Packages []primaryPackage `xml:"package"`
}

type primaryPackage struct {
	Name    string `xml:"name"`
	Arch    string `xml:"arch"`
	Version struct {
		Epoch string `xml:"epoch,attr"`
		Ver   string `xml:"ver,attr"`
		Rel   string `xml:"rel,attr"`
	} `xml:"version"`
	Checksum checksum `xml:"checksum"`
	Size     struct {
		Package int64 `xml:"package,attr"`
	} `xml:"size"`
	Location location `xml:"location"`
}

func (p primaryPackage) nevra() string {
	return p.Name + "-" + p.Version.Ver + "-" + p.Version.Rel + "." + p.Arch
}

// fetchRepomd fetches and parses /{repo}/repodata/repomd.xml.
func fetchRepomd(t *testing.T, s *server, repo string) repomd {
	t.Helper()
	b := s.get(t, "/"+repo+"/repodata/repomd.xml")
	var md repomd
	if err := xml.Unmarshal(b, &md); err != nil {
		t.Fatalf("parse repomd.xml: %v\n%s", err, b)
	}
	if len(md.Data) == 0 {
		t.Fatalf("repomd.xml names no files:\n%s", b)
	}
	return md
}

// data returns the entry of one type, failing the test if there is none.
func (md repomd) data(t *testing.T, typ string) repomdData {
	t.Helper()
	for _, d := range md.Data {
		if d.Type == typ {
			return d
		}
	}
	t.Fatalf("repomd.xml has no %q entry: %+v", typ, md.Data)
	return repomdData{}
}

// fetchData fetches a file repomd.xml names and checks it against the
// checksums and sizes repomd.xml gives, returning it uncompressed.
func fetchData(t *testing.T, s *server, repo string, d repomdData) []byte {
	t.Helper()
	b := s.get(t, "/"+repo+"/"+d.Location.Href)
	if d.Checksum.Type != "sha256" {
		t.Errorf("%s: checksum type %q, want sha256", d.Location.Href, d.Checksum.Type)
	}
	if got := sha256hex(b); got != d.Checksum.Value {
		t.Errorf("%s: sha256 %s, repomd.xml says %s", d.Location.Href, got, d.Checksum.Value)
	}
	if d.Size != 0 && int64(len(b)) != d.Size {
		t.Errorf("%s: %d bytes, repomd.xml says %d", d.Location.Href, len(b), d.Size)
	}
	if path.Ext(d.Location.Href) != ".gz" {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", d.Location.Href, err)
	}
	open, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: gunzip: %v", d.Location.Href, err)
	}
	if d.OpenChecksum.Value != "" && sha256hex(open) != d.OpenChecksum.Value {
		t.Errorf("%s: uncompressed sha256 %s, repomd.xml says %s", d.Location.Href, sha256hex(open), d.OpenChecksum.Value)
	}
	if d.OpenSize != 0 && int64(len(open)) != d.OpenSize {
		t.Errorf("%s: %d bytes uncompressed, repomd.xml says %d", d.Location.Href, len(open), d.OpenSize)
	}
	return open
}

// parsePrimary parses an uncompressed primary.xml.
func parsePrimary(t *testing.T, b []byte) []primaryPackage {
	t.Helper()
	var p primaryXML
	if err := xml.Unmarshal(b, &p); err != nil {
		t.Fatalf("parse primary.xml: %v", err)
	}
	if p.Count != nil {
		t.Errorf("primary.xml has packages=%d; packyard does not write the count", *p.Count)
	}
	return p.Packages
}

// fetchPrimary fetches the current primary.xml of a repository.
func fetchPrimary(t *testing.T, s *server, repo string) []primaryPackage {
	t.Helper()
	md := fetchRepomd(t, s, repo)
	return parsePrimary(t, fetchData(t, s, repo, md.data(t, "primary")))
}

// verifyGeneration checks the current generation of a repository end to
// end over HTTP: every file repomd.xml names and every package primary.xml
// names exists and matches its checksum and size. It returns the packages.
func verifyGeneration(t *testing.T, s *server, repo string) []primaryPackage {
	t.Helper()
	md := fetchRepomd(t, s, repo)
	md.data(t, "primary")
	var pkgs []primaryPackage
	for _, d := range md.Data {
		b := fetchData(t, s, repo, d)
		if d.Type == "primary" {
			pkgs = parsePrimary(t, b)
		}
	}
	for _, p := range pkgs {
		verifyPackageFile(t, s, repo, p)
	}
	return pkgs
}

// verifyPackageFile fetches the package a primary.xml entry names and
// checks its checksum and size.
func verifyPackageFile(t *testing.T, s *server, repo string, p primaryPackage) {
	t.Helper()
	b := s.get(t, "/"+repo+"/"+p.Location.Href)
	if got := sha256hex(b); p.Checksum.Type != "sha256" || got != p.Checksum.Value {
		t.Errorf("%s: sha256 %s, primary.xml says %s:%s", p.Location.Href, got, p.Checksum.Type, p.Checksum.Value)
	}
	if int64(len(b)) != p.Size.Package {
		t.Errorf("%s: %d bytes, primary.xml says %d", p.Location.Href, len(b), p.Size.Package)
	}
}

// byName indexes primary.xml entries by package name.
func byName(pkgs []primaryPackage) map[string]primaryPackage {
	m := make(map[string]primaryPackage, len(pkgs))
	for _, p := range pkgs {
		m[p.Name] = p
	}
	return m
}

func pkgName(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }
