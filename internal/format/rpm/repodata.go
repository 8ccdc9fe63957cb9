package rpm

import (
	"fmt"
	"strconv"

	"github.com/packyard/packyard/internal/format"
)

// Repository layout, as createrepo_c writes it with its defaults (sha256,
// gzip, unique file names, no sqlite databases):
//
//	repodata/repomd.xml
//	repodata/<sha256 of the .gz>-primary.xml.gz
//	repodata/<sha256 of the .gz>-filelists.xml.gz
//	repodata/<sha256 of the .gz>-other.xml.gz
//	Packages/<first letter of the name>/<name>-<version>-<release>.<arch>.rpm
//
// repomd.xml: https://github.com/rpm-software-management/createrepo_c
// (src/repomd.c).

// RepomdPath is where Finish puts repomd.xml.
const RepomdPath = "repodata/repomd.xml"

// Content types of the generated files.
const (
	contentTypeXML  = "application/xml"
	contentTypeGzip = "application/gzip"
	contentTypeKeys = "application/pgp-keys"
	contentTypeSig  = "application/pgp-signature"
)

const xmlDecl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

// streamDefs are the three metadata files: name (also the fragment kind and
// the repomd data type), root element and namespaces.
var streamDefs = [...]struct {
	name, root, ns string
}{
	{Primary, "metadata", `xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"`},
	{Filelists, "filelists", `xmlns="http://linux.duke.edu/metadata/filelists"`},
	{Other, "otherdata", `xmlns="http://linux.duke.edu/metadata/other"`},
}

// Streams returns primary, filelists and other, each of every entry,
// gzip-compressed. The header and footer are byte for byte createrepo_c's:
// the footer has no trailing newline.
func (f *Format) Streams(entries []*format.Entry, opts format.PublishOptions) []format.Stream {
	out := make([]format.Stream, 0, len(streamDefs))
	for _, sd := range streamDefs {
		header := []byte(xmlDecl + "<" + sd.root + " " + sd.ns + ">\n")
		out = append(out, format.Stream{
			Name:     sd.name,
			Fragment: sd.name,
			// The root element carries no packages="N" count (see the
			// package comment): with it, every publish would change the
			// first bytes of every file and force re-hashing all of it.
			Header:    func(int) []byte { return header },
			Footer:    []byte("</" + sd.root + ">"),
			Encodings: []format.Encoding{format.Gzip},
		})
	}
	return out
}

// Finish returns repodata/repomd.xml, listing the gzip-compressed streams
// under their content-addressed names, and a File naming each stream's
// blob at that path.
func (f *Format) Finish(built []format.Built, opts format.PublishOptions) ([]format.File, error) {
	byName := make(map[string]*format.Built, len(built))
	for i := range built {
		byName[built[i].Name] = &built[i]
	}
	ts := opts.Time.Unix()
	b := make([]byte, 0, 2048)
	b = append(b, xmlDecl...)
	b = append(b, `<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">`+"\n"...)
	b = append(b, "  <revision>"...)
	b = strconv.AppendInt(b, opts.Revision, 10)
	b = append(b, "</revision>\n"...)
	files := make([]format.File, 0, len(streamDefs)+1)
	for _, sd := range streamDefs {
		s, ok := byName[sd.name]
		if !ok {
			return nil, fmt.Errorf("rpm: stream %q was not built", sd.name)
		}
		gz, ok := s.Encoded[format.Gzip]
		if !ok {
			return nil, fmt.Errorf("rpm: stream %q has no gzip encoding", sd.name)
		}
		href := "repodata/" + gz.SHA256 + "-" + sd.name + ".xml.gz"
		b = append(b, "  <data"...)
		b = appendAttrPair(b, "type", sd.name)
		b = append(b, ">\n    <checksum type=\"sha256\">"...)
		b = appendText(b, gz.SHA256)
		b = append(b, "</checksum>\n    <open-checksum type=\"sha256\">"...)
		b = appendText(b, s.Raw.SHA256)
		b = append(b, "</open-checksum>\n    <location"...)
		b = appendAttrPair(b, "href", href)
		b = append(b, "/>\n    <timestamp>"...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, "</timestamp>\n    <size>"...)
		b = strconv.AppendInt(b, gz.Size, 10)
		b = append(b, "</size>\n    <open-size>"...)
		b = strconv.AppendInt(b, s.Raw.Size, 10)
		b = append(b, "</open-size>\n  </data>\n"...)
		files = append(files, format.File{
			Path:        href,
			ContentType: contentTypeGzip,
			SHA256:      gz.SHA256,
			Size:        gz.Size,
		})
	}
	b = append(b, "</repomd>\n"...)
	files = append(files, format.File{Path: RepomdPath, ContentType: contentTypeXML, Data: b})
	if opts.Signer != nil {
		// dnf's repo_gpgcheck reads the detached signature beside
		// repomd.xml and the key from gpgkey= (repomd.xml.key by
		// convention); both come from this same generation.
		sig, err := opts.Signer.DetachArmored(b)
		if err != nil {
			return nil, fmt.Errorf("rpm: sign repomd.xml: %w", err)
		}
		files = append(files,
			format.File{Path: RepomdPath + ".asc", ContentType: contentTypeSig, Data: sig},
			format.File{Path: RepomdPath + ".key", ContentType: contentTypeKeys, Data: opts.PublicKey})
	}
	return files, nil
}
