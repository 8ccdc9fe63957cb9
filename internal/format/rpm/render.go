package rpm

import (
	"fmt"

	"github.com/packyard/packyard/internal/format"
)

// Fragment kinds, stream names and repomd.xml data types.
const (
	// Primary names the primary.xml fragments and stream.
	Primary = "primary"
	// Filelists names the filelists.xml fragments and stream.
	Filelists = "filelists"
	// Other names the other.xml fragments and stream.
	Other = "other"
)

// Render returns the <package> elements createrepo_c writes for p into
// primary.xml, filelists.xml and other.xml, keyed by Primary, Filelists and
// Other. Each ends with a newline.
func (f *Format) Render(p *format.Package, fi format.FileInfo) (map[string][]byte, error) {
	d, ok := p.Data.(*pkgData)
	if !ok || d == nil {
		return nil, fmt.Errorf("rpm: package %s was not parsed by the rpm format", p.Name)
	}
	return map[string][]byte{
		Primary:   d.primary(p.Path, fi),
		Filelists: d.filelists(fi.SHA256),
		Other:     d.other(fi.SHA256),
	}, nil
}

// primary renders the primary.xml element (createrepo_c
// xml_dump_primary.c).
func (d *pkgData) primary(href string, fi format.FileInfo) []byte {
	// Buffers are sized from the escaped lengths, so that each fragment
	// is one allocation without much spare capacity.
	n := 1100 + len(href) + d.versionLen() + textLen(d.name) + textLen(d.arch) +
		textLen(d.summary) + textLen(d.description) + textLen(d.packager) + textLen(d.url) +
		textLen(d.license) + textLen(d.vendor) + textLen(d.group) + textLen(d.buildHost) + textLen(d.sourceRPM)
	for _, l := range d.deps {
		for i := range l {
			n += 90 + attrLen(l[i].name) + attrLen(l[i].epoch) + attrLen(l[i].ver) + attrLen(l[i].rel)
		}
	}
	for _, fl := range d.files {
		if fl.primary {
			n += d.fileLen(fl)
		}
	}
	b := make([]byte, 0, n)

	b = append(b, "<package type=\"rpm\">\n"...)
	b = appendTextElem(b, "  ", "name", d.name)
	b = appendTextElem(b, "  ", "arch", d.arch)
	b = d.appendVersion(b)
	b = append(b, "  <checksum"...)
	b = appendAttrPair(b, "type", "sha256")
	b = append(b, ` pkgid="YES">`...)
	b = appendText(b, fi.SHA256)
	b = append(b, "</checksum>\n"...)
	b = appendTextElem(b, "  ", "summary", d.summary)
	b = appendTextElem(b, "  ", "description", d.description)
	b = appendTextElem(b, "  ", "packager", d.packager)
	b = appendTextElem(b, "  ", "url", d.url)
	b = append(b, "  <time"...)
	b = appendIntAttr(b, "file", fi.Time.Unix())
	b = appendIntAttr(b, "build", d.buildTime)
	b = append(b, "/>\n  <size"...)
	b = appendIntAttr(b, "package", fi.Size)
	b = appendIntAttr(b, "installed", d.sizeInstalled)
	b = appendIntAttr(b, "archive", d.sizeArchive)
	b = append(b, "/>\n  <location"...)
	b = appendAttrPair(b, "href", href)
	b = append(b, "/>\n  <format>\n"...)
	b = appendTextElem(b, "    ", "rpm:license", d.license)
	b = appendTextElem(b, "    ", "rpm:vendor", d.vendor)
	b = appendTextElem(b, "    ", "rpm:group", d.group)
	b = appendTextElem(b, "    ", "rpm:buildhost", d.buildHost)
	b = appendTextElem(b, "    ", "rpm:sourcerpm", d.sourceRPM)
	b = append(b, "    <rpm:header-range"...)
	b = appendIntAttr(b, "start", d.hdrStart)
	b = appendIntAttr(b, "end", d.hdrEnd)
	b = append(b, "/>\n"...)
	for l, deps := range d.deps {
		b = appendDeps(b, depElems[l], deps, l == listRequires)
	}
	for _, fl := range d.files {
		if fl.primary {
			b = d.appendFile(b, "    ", fl)
		}
	}
	b = append(b, "  </format>\n</package>\n"...)
	return b
}

// appendVersion appends the <version/> line all three files share.
func (d *pkgData) appendVersion(b []byte) []byte {
	b = append(b, "  <version"...)
	b = appendAttrPair(b, "epoch", d.epoch)
	b = appendAttrPair(b, "ver", d.version)
	b = appendAttrPair(b, "rel", d.release)
	return append(b, "/>\n"...)
}

// appendDeps appends one dependency list. Like createrepo_c it writes the
// list element for a non-empty list even if every entry in it has an
// empty name and is left out.
func appendDeps(b []byte, elem string, deps []dep, requires bool) []byte {
	if len(deps) == 0 {
		return b
	}
	b = append(b, "    <"...)
	b = append(b, elem...)
	open := len(b)
	b = append(b, ">\n"...)
	written := false
	for i := range deps {
		dp := &deps[i]
		if dp.name == "" {
			continue
		}
		written = true
		b = append(b, "      <rpm:entry"...)
		b = appendAttrPair(b, "name", dp.name)
		if dp.flags != flagNone {
			b = appendAttrPair(b, "flags", dp.flags.String())
			if dp.epoch != "" {
				b = appendAttrPair(b, "epoch", dp.epoch)
			}
			if dp.ver != "" {
				b = appendAttrPair(b, "ver", dp.ver)
			}
			if dp.rel != "" {
				b = appendAttrPair(b, "rel", dp.rel)
			}
		}
		if requires && dp.pre {
			b = append(b, ` pre="1"`...)
		}
		b = append(b, "/>\n"...)
	}
	if !written {
		return append(b[:open], "/>\n"...)
	}
	b = append(b, "    </"...)
	b = append(b, elem...)
	return append(b, ">\n"...)
}

// appendFile appends one <file> line.
func (d *pkgData) appendFile(b []byte, indent string, fl file) []byte {
	b = append(b, indent...)
	b = append(b, "<file"...)
	switch fl.kind {
	case kindDir:
		b = append(b, ` type="dir"`...)
	case kindGhost:
		b = append(b, ` type="ghost"`...)
	}
	b = append(b, '>')
	if fl.dir >= 0 {
		b = appendText(b, d.dirs[fl.dir])
	}
	b = appendText(b, fl.base)
	return append(b, "</file>\n"...)
}

// appendPackageOpen appends the <package pkgid name arch> line of
// filelists.xml and other.xml.
func (d *pkgData) appendPackageOpen(b []byte, pkgid string) []byte {
	b = append(b, "<package"...)
	b = appendAttrPair(b, "pkgid", pkgid)
	b = appendAttrPair(b, "name", d.name)
	b = appendAttrPair(b, "arch", d.arch)
	return append(b, ">\n"...)
}

// filelists renders the filelists.xml element (xml_dump_filelists.c).
func (d *pkgData) filelists(pkgid string) []byte {
	n := d.packageOpenLen(pkgid) + d.versionLen() + 20
	for _, fl := range d.files {
		n += d.fileLen(fl)
	}
	b := make([]byte, 0, n)
	b = d.appendPackageOpen(b, pkgid)
	b = d.appendVersion(b)
	for _, fl := range d.files {
		b = d.appendFile(b, "  ", fl)
	}
	return append(b, "</package>\n"...)
}

// other renders the other.xml element (xml_dump_other.c).
func (d *pkgData) other(pkgid string) []byte {
	n := d.packageOpenLen(pkgid) + d.versionLen() + 20
	for _, c := range d.changes {
		n += 80 + attrLen(c.author) + textLen(c.text)
	}
	b := make([]byte, 0, n)
	b = d.appendPackageOpen(b, pkgid)
	b = d.appendVersion(b)
	for _, c := range d.changes {
		b = append(b, "  <changelog"...)
		b = appendAttrPair(b, "author", c.author)
		b = appendIntAttr(b, "date", c.date)
		b = append(b, '>')
		b = appendText(b, c.text)
		b = append(b, "</changelog>\n"...)
	}
	return append(b, "</package>\n"...)
}

// Upper bounds of the lengths of the lines above, for sizing buffers.

func (d *pkgData) versionLen() int {
	return 40 + attrLen(d.epoch) + attrLen(d.version) + attrLen(d.release)
}

func (d *pkgData) packageOpenLen(pkgid string) int {
	return 40 + attrLen(pkgid) + attrLen(d.name) + attrLen(d.arch)
}

func (d *pkgData) fileLen(fl file) int {
	n := 40 + textLen(fl.base)
	if fl.dir >= 0 {
		n += textLen(d.dirs[fl.dir])
	}
	return n
}

// textLen is the length of s escaped by appendText.
func textLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&', '\r':
			n += 4
		case '<', '>':
			n += 3
		}
	}
	return n
}

// attrLen bounds the length of s escaped by appendAttr: a character
// reference is at most 10 bytes, and every non-ASCII byte takes at most
// one.
func attrLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&' || c == '"':
			n += 5
		case c == '<' || c == '>' || c == '\n' || c == '\r' || c == '\t':
			n += 4
		case c >= 0x80:
			n += 5
		}
	}
	return n
}

// CheckFile compares the whole file with its signature header, which gives
// the size of the main header and the payload: a file cut short (a copy
// still in progress) or with bytes appended does not match, as rpm itself
// checks.
func (f *Format) CheckFile(p *format.Package, fi format.FileInfo) error {
	d, ok := p.Data.(*pkgData)
	if !ok || d == nil {
		return fmt.Errorf("rpm: package %s was not parsed by the rpm format", p.Name)
	}
	if d.sigSize > 0 && uint64(fi.Size) != uint64(d.hdrStart)+d.sigSize {
		return errorf(ErrTruncated, "the signature header gives %d bytes after the signature, the file has %d: the package is incomplete or has bytes appended",
			d.sigSize, fi.Size-d.hdrStart)
	}
	return nil
}
