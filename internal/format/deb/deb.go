package deb

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/packyard/packyard/internal/format"
)

var _ format.Format = (*Format)(nil)

// Format is the Debian binary package format: .deb and .udeb files in APT
// repositories with any number of distributions and components. It holds
// no state.
type Format struct{}

// New returns the deb format.
func New() *Format { return &Format{} }

// Name returns "deb".
func (f *Format) Name() string { return "deb" }

// Upload parameters.
const (
	ParamDistribution = "distribution"
	ParamComponent    = "component"
	// DefaultComponent is used when an upload names none.
	DefaultComponent = "main"
)

// Fragment kinds.
const (
	// FragPackages is the package's stanza in a Packages index, followed
	// by the blank line that ends it.
	FragPackages = "Packages"
)

var scopeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// scopeOf reads and checks the distribution and component of an upload.
func scopeOf(params format.UploadParams) (dist, comp string, err error) {
	dist, comp = params[ParamDistribution], params[ParamComponent]
	if comp == "" {
		comp = DefaultComponent
	}
	if dist == "" {
		return "", "", fmt.Errorf("%w: an APT upload needs a distribution (?distribution=bookworm, push --distribution, or the WebDAV path /dav/REPO/DIST/COMPONENT/)", format.ErrInvalidPackage)
	}
	for _, v := range []struct{ what, name string }{{"distribution", dist}, {"component", comp}} {
		if !scopeNameRE.MatchString(v.name) || v.name == "by-hash" {
			return "", "", fmt.Errorf("%w: %s %q must be 1-64 letters, digits, '.', '_', '+', '-'", format.ErrInvalidPackage, v.what, v.name)
		}
	}
	return dist, comp, nil
}

// parsed is what Parse keeps for Render.
type parsed struct {
	deb  *Deb
	udeb bool
}

// Parse reads one .deb or .udeb to its end. The distribution and
// component come from params and are checked before the body is read.
func (f *Format) Parse(r io.Reader, filename string, params format.UploadParams) (*format.Package, error) {
	return f.parse(filename, params, func() (*Deb, error) { return ReadDeb(r) })
}

// parse checks the file name and params, then reads the package with
// read.
func (f *Format) parse(filename string, params format.UploadParams, read func() (*Deb, error)) (*format.Package, error) {
	udeb := strings.HasSuffix(filename, ".udeb")
	if !udeb && !strings.HasSuffix(filename, ".deb") {
		return nil, fmt.Errorf("%w: %q is not a .deb or .udeb file name", format.ErrInvalidPackage, filename)
	}
	_, comp, err := scopeOf(params)
	if err != nil {
		return nil, err
	}
	d, err := read()
	if err != nil {
		return nil, err
	}
	c := d.Control
	if err := CheckBinary(c); err != nil {
		return nil, err
	}
	name, arch := c.Get("Package"), c.Get("Architecture")
	v, err := ParseVersion(c.Get("Version"))
	if err != nil {
		return nil, fmt.Errorf("%w: control: Version: %v", format.ErrInvalidPackage, err)
	}
	if strings.TrimLeft(v.Epoch, "0") == "" {
		v.Epoch = "" // 0:1.0 is 1.0
	}
	source := name
	if s := c.Get("Source"); s != "" {
		source, _, _ = strings.Cut(s, " ")
	}
	return &format.Package{
		Identity: format.Identity{Name: name, Epoch: v.Epoch, Version: v.Upstream, Release: v.Revision, Arch: arch},
		Summary:  synopsis(c.Get("Description")),
		Path:     poolPath(comp, source, name, v, arch, udeb),
		Data:     &parsed{deb: d, udeb: udeb},
	}, nil
}

// ParseStored is Parse for a stored file whose digests packyard computed
// while storing it (a mirror's download): it reads the control member
// and seeks over the data member instead of hashing it.
func (f *Format) ParseStored(r io.ReadSeeker, size int64, filename string, params format.UploadParams, sums format.Digests) (*format.Package, error) {
	if sums.MD5 == "" || sums.SHA256 == "" {
		return nil, errors.New("deb: ParseStored needs the MD5 and SHA-256 of the file")
	}
	return f.parse(filename, params, func() (*Deb, error) {
		d, err := ReadDebStored(r, size)
		if err != nil {
			return nil, err
		}
		d.MD5, d.SHA256 = sums.MD5, sums.SHA256
		return d, nil
	})
}

// poolPath is pool/COMPONENT/PREFIX/SOURCE/NAME_VERSION_ARCH.deb, the
// Debian archive layout (the version without its epoch; the prefix is the
// source's first letter, or "lib" and the fourth for lib* sources).
func poolPath(comp, source, name string, v Version, arch string, udeb bool) string {
	prefix := source[:1]
	if strings.HasPrefix(source, "lib") && len(source) > 3 {
		prefix = source[:4]
	}
	ver := Version{Upstream: v.Upstream, Revision: v.Revision}.String()
	ext := ".deb"
	if udeb {
		ext = ".udeb"
	}
	return "pool/" + comp + "/" + prefix + "/" + source + "/" + name + "_" + ver + "_" + arch + ext
}

func synopsis(desc string) string {
	line, _, _ := strings.Cut(desc, "\n")
	return strings.TrimSpace(line)
}

// Scope returns "distribution/component".
func (f *Format) Scope(p *format.Package, params format.UploadParams) (string, error) {
	dist, comp, err := scopeOf(params)
	if err != nil {
		return "", err
	}
	return dist + "/" + comp, nil
}

// Compare orders two versions of a package as dpkg does.
func (f *Format) Compare(a, b format.Identity) int {
	return CompareVersions(fullVersion(a), fullVersion(b))
}

func fullVersion(id format.Identity) string {
	return Version{Epoch: id.Epoch, Upstream: id.Version, Revision: id.Release}.String()
}

// Render renders the package's Packages stanza: the control fields in
// their order, then Filename, Size and the file's MD5 and SHA-256, the
// digests Debian's own archive lists (it dropped SHA1 in 2016 and never
// listed SHA512 in Packages; apt verifies a package by its SHA-256).
func (f *Format) Render(p *format.Package, fi format.FileInfo) (map[string][]byte, error) {
	pd, ok := p.Data.(*parsed)
	if !ok {
		return nil, fmt.Errorf("deb: Render of a package that Parse did not return")
	}
	if fi.SHA256 != pd.deb.SHA256 || fi.Size != pd.deb.Size {
		return nil, fmt.Errorf("deb: stored file (sha256 %s, %d bytes) is not the file parsed (sha256 %s, %d bytes)", fi.SHA256, fi.Size, pd.deb.SHA256, pd.deb.Size)
	}
	return map[string][]byte{FragPackages: stanza(pd, p.Path)}, nil
}

// generated are the fields the repository writes itself; a control file's
// own are dropped.
var generated = map[string]bool{
	"filename": true, "size": true, "md5sum": true, "sha1": true, "sha256": true, "sha512": true,
	"msdos-filename": true, "status": true,
}

func stanza(pd *parsed, path string) []byte {
	var b strings.Builder
	for _, fl := range pd.deb.Control.Fields {
		if generated[strings.ToLower(fl.Name)] {
			continue
		}
		writeField(&b, fl.Name, fl.Value)
	}
	writeField(&b, "Filename", path)
	writeField(&b, "Size", fmt.Sprint(pd.deb.Size))
	writeField(&b, "MD5sum", pd.deb.MD5)
	writeField(&b, "SHA256", pd.deb.SHA256)
	b.WriteByte('\n')
	return []byte(b.String())
}

func writeField(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	if value != "" && !strings.HasPrefix(value, "\n") {
		b.WriteByte(' ')
	}
	b.WriteString(value)
	b.WriteByte('\n')
}

// scopeParts splits a scope into distribution and component.
func scopeParts(scope string) (dist, comp string) {
	dist, comp, _ = strings.Cut(scope, "/")
	return dist, comp
}

// DefaultArchitecture is indexed in a distribution that holds only
// Architecture: all packages and has no configured architectures.
const DefaultArchitecture = "amd64"

// layout is what a repository's entries make: distributions, their
// components and architectures, and which scopes have udebs.
type layout struct {
	dists []string
	comps map[string][]string // by distribution
	archs map[string][]string // by distribution
	udebs map[string]bool     // by scope
}

func layoutOf(entries []*format.Entry, configured []string) layout {
	l := layout{comps: map[string][]string{}, archs: map[string][]string{}, udebs: map[string]bool{}}
	comps := map[string]map[string]bool{}
	archs := map[string]map[string]bool{}
	for _, e := range entries {
		dist, comp := scopeParts(e.Scope)
		if comps[dist] == nil {
			comps[dist], archs[dist] = map[string]bool{}, map[string]bool{}
			for _, a := range configured {
				archs[dist][a] = true
			}
		}
		comps[dist][comp] = true
		if e.Arch != "all" {
			archs[dist][e.Arch] = true
		}
		if strings.HasSuffix(e.Path, ".udeb") {
			l.udebs[e.Scope] = true
		}
	}
	for dist := range comps {
		l.dists = append(l.dists, dist)
		l.comps[dist] = sortedKeys(comps[dist])
		if len(archs[dist]) == 0 {
			archs[dist][DefaultArchitecture] = true
		}
		l.archs[dist] = sortedKeys(archs[dist])
	}
	sort.Strings(l.dists)
	return l
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// indexDir is a Packages index's directory below dists/DIST/.
func indexDir(comp, arch string, udeb bool) string {
	if udeb {
		return comp + "/debian-installer/binary-" + arch
	}
	return comp + "/binary-" + arch
}

// Streams returns one Packages stream per distribution, component and
// architecture (and per debian-installer index where udebs are), each
// holding the architecture's packages and the Architecture: all ones.
// Stream names are the index paths, "dists/DIST/COMP/binary-ARCH/Packages".
func (f *Format) Streams(entries []*format.Entry, opts format.PublishOptions) []format.Stream {
	l := layoutOf(entries, opts.Settings.Architectures)
	var out []format.Stream
	for _, dist := range l.dists {
		for _, comp := range l.comps[dist] {
			scope := dist + "/" + comp
			for _, arch := range l.archs[dist] {
				for _, udeb := range []bool{false, true} {
					if udeb && !l.udebs[scope] {
						continue
					}
					out = append(out, format.Stream{
						Name:         "dists/" + dist + "/" + indexDir(comp, arch, udeb) + "/Packages",
						Fragment:     FragPackages,
						Match:        matcher(scope, arch, udeb),
						Header:       func(int) []byte { return nil },
						Encodings:    []format.Encoding{format.Raw, format.Gzip, format.Xz},
						LegacyHashes: true,
					})
				}
			}
		}
	}
	return out
}

func matcher(scope, arch string, udeb bool) func(e *format.Entry) bool {
	return func(e *format.Entry) bool {
		return e.Scope == scope && (e.Arch == arch || e.Arch == "all") && strings.HasSuffix(e.Path, ".udeb") == udeb
	}
}
