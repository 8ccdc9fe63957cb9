package upstream

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseRepomd lists the files a repomd.xml names, with their sha256
// (https://github.com/rpm-software-management/createrepo_c, repomd.xml).
// A data file without a sha256 checksum, or with a location outside the
// repository, is an error: a mirror could not check it.
func ParseRepomd(b []byte) ([]IndexFile, error) {
	if len(b) > MaxPointer {
		return nil, fmt.Errorf("%w: repomd.xml is larger than %d bytes", ErrTooLarge, MaxPointer)
	}
	var md struct {
		XMLName xml.Name `xml:"repomd"`
		Data    []struct {
			Type     string `xml:"type,attr"`
			Checksum struct {
				Type  string `xml:"type,attr"`
				Value string `xml:",chardata"`
			} `xml:"checksum"`
			Location struct {
				Href string `xml:"href,attr"`
				Base string `xml:"base,attr"`
			} `xml:"location"`
			Size int64 `xml:"size"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("%w: repomd.xml: %v", ErrInvalid, err)
	}
	out := make([]IndexFile, 0, len(md.Data))
	for _, d := range md.Data {
		href := d.Location.Href
		if d.Location.Base != "" {
			return nil, fmt.Errorf("%w: repomd.xml: %s data has an xml:base (%q): files elsewhere are not mirrored", ErrInvalid, d.Type, d.Location.Base)
		}
		if err := CheckPath(href); err != nil {
			return nil, fmt.Errorf("repomd.xml: %s data: %w", d.Type, err)
		}
		sum := strings.TrimSpace(d.Checksum.Value)
		if d.Checksum.Type != "sha256" || !isHex64(sum) {
			return nil, fmt.Errorf("%w: repomd.xml: %s data has a %s checksum %q, not a sha256", ErrInvalid, d.Type, d.Checksum.Type, sum)
		}
		size := d.Size
		if size <= 0 {
			size = -1
		}
		out = append(out, IndexFile{Type: d.Type, Path: href, SHA256: sum, Size: size})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: repomd.xml names no data", ErrInvalid)
	}
	return out, nil
}

// ScanPrimary streams a (decompressed) primary.xml and calls fn for each
// package with its location, sha256 and size. A package without a sha256
// or with a location outside the repository is an error.
func ScanPrimary(r io.Reader, fn func(Entry) error) error {
	g := &tokenGuard{r: bufio.NewReaderSize(r, 64<<10)}
	dec := xml.NewDecoder(g)
	var (
		e          Entry
		inPkg      bool
		field      string
		sha        bool
		epoch      string
		ver, rel   string
		text       strings.Builder
		sawPackage bool
	)
	for {
		g.n = 0
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !sawPackage && !g.sawRoot {
				return fmt.Errorf("%w: primary.xml: no <metadata> element", ErrInvalid)
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return err
			}
			return fmt.Errorf("%w: primary.xml: %v", ErrInvalid, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "metadata" {
				g.sawRoot = true
			}
			switch {
			case t.Name.Local == "package":
				inPkg, sawPackage = true, true
				e, epoch, ver, rel = Entry{Size: -1}, "", "", ""
			case !inPkg:
			case t.Name.Local == "name" || t.Name.Local == "arch":
				field = t.Name.Local
				text.Reset()
			case t.Name.Local == "checksum":
				field, sha = "checksum", attr(t, "type") == "sha256"
				text.Reset()
			case t.Name.Local == "version":
				epoch, ver, rel = attr(t, "epoch"), attr(t, "ver"), attr(t, "rel")
			case t.Name.Local == "location":
				if attr(t, "base") != "" {
					return fmt.Errorf("%w: primary.xml: a package location has an xml:base: files elsewhere are not mirrored", ErrInvalid)
				}
				e.Path = attr(t, "href")
			case t.Name.Local == "size":
				if n, err := strconv.ParseInt(attr(t, "package"), 10, 64); err == nil && n >= 0 {
					e.Size = n
				}
			}
		case xml.CharData:
			if field != "" && text.Len() < 256 {
				text.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "name":
				if field == "name" {
					e.Name = strings.TrimSpace(text.String())
				}
			case "arch":
				if field == "arch" {
					e.Arch = strings.TrimSpace(text.String())
				}
			case "checksum":
				if field == "checksum" && sha {
					e.SHA256 = strings.TrimSpace(text.String())
				}
			case "package":
				if !inPkg {
					break
				}
				inPkg = false
				e.Version = ver + "-" + rel
				if epoch != "" && epoch != "0" {
					e.Version = epoch + ":" + e.Version
				}
				if err := CheckPath(e.Path); err != nil {
					return fmt.Errorf("primary.xml: package %s: %w", e.Name, err)
				}
				if !isHex64(e.SHA256) {
					return fmt.Errorf("%w: primary.xml: package %s has no sha256 checksum", ErrInvalid, e.Path)
				}
				if err := fn(e); err != nil {
					return err
				}
			}
			field = ""
		}
	}
}

// tokenGuard is the byte reader an xml.Decoder reads through: it fails
// once one token (a tag with its attributes, a text node) passes
// maxEntry bytes, since the decoder holds a token in memory whole.
type tokenGuard struct {
	r       *bufio.Reader
	n       int
	sawRoot bool
}

func (g *tokenGuard) ReadByte() (byte, error) {
	if g.n >= maxEntry {
		return 0, fmt.Errorf("%w: an XML token is larger than %d bytes", ErrTooLarge, maxEntry)
	}
	g.n++
	return g.r.ReadByte()
}

func (g *tokenGuard) Read(p []byte) (int, error) {
	if g.n >= maxEntry {
		return 0, fmt.Errorf("%w: an XML token is larger than %d bytes", ErrTooLarge, maxEntry)
	}
	p = p[:min(len(p), maxEntry-g.n)]
	n, err := g.r.Read(p)
	g.n += n
	return n, err
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
