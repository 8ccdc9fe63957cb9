package deb

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/packyard/packyard/internal/format"
)

// Content types of the generated files.
const (
	contentTypeText = "text/plain; charset=utf-8"
	contentTypeGzip = "application/gzip"
	contentTypeXz   = "application/x-xz"
	contentTypeSig  = "application/pgp-signature"
)

// releaseDate is the Date format of Release files (RFC 2822, in UTC).
const releaseDate = "Mon, 02 Jan 2006 15:04:05 UTC"

// indexFile is one index file of a distribution, as Release lists it.
type indexFile struct {
	rel  string // path below dists/DIST/
	blob format.Blob
	enc  format.Encoding
}

// Finish returns, per distribution, the Packages indexes (plain, .gz, .xz)
// under their names and under by-hash/SHA256/, the Release file listing
// them with MD5, SHA-1 and SHA-256, and, when the repository is signed,
// InRelease (clearsigned) and Release.gpg (detached).
func (f *Format) Finish(built []format.Built, opts format.PublishOptions) ([]format.File, error) {
	byDist := map[string][]indexFile{}
	for _, b := range built {
		rest, ok := strings.CutPrefix(b.Name, "dists/")
		dist, rel, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			return nil, fmt.Errorf("deb: stream %q is not under dists/DIST/", b.Name)
		}
		for _, enc := range []format.Encoding{format.Raw, format.Gzip, format.Xz} {
			blob, ok := b.Encoded[enc]
			if !ok {
				continue
			}
			if blob.MD5 == "" || blob.SHA1 == "" {
				return nil, fmt.Errorf("deb: stream %q was built without MD5 and SHA-1", b.Name)
			}
			name := rel
			if enc != format.Raw {
				name += "." + string(enc)
			}
			byDist[dist] = append(byDist[dist], indexFile{rel: name, blob: blob, enc: enc})
		}
	}
	dists := make([]string, 0, len(byDist))
	for d := range byDist {
		dists = append(dists, d)
	}
	sort.Strings(dists)

	var files []format.File
	for _, dist := range dists {
		idx := byDist[dist]
		sort.Slice(idx, func(i, j int) bool { return idx[i].rel < idx[j].rel })
		base := "dists/" + dist + "/"
		for _, x := range idx {
			ct := contentTypeText
			switch x.enc {
			case format.Gzip:
				ct = contentTypeGzip
			case format.Xz:
				ct = contentTypeXz
			}
			dir := x.rel[:strings.LastIndexByte(x.rel, '/')+1]
			files = append(files,
				format.File{Path: base + x.rel, ContentType: ct, SHA256: x.blob.SHA256, Size: x.blob.Size},
				format.File{Path: base + dir + "by-hash/SHA256/" + x.blob.SHA256, ContentType: ct, SHA256: x.blob.SHA256, Size: x.blob.Size})
		}
		rel := release(dist, idx, opts)
		files = append(files, format.File{Path: base + "Release", ContentType: contentTypeText, Data: rel})
		if opts.Signer != nil {
			// Both signatures at once: each is milliseconds of CPU.
			var in []byte
			var inErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				in, inErr = opts.Signer.ClearSign(rel)
			}()
			gpg, err := opts.Signer.DetachArmored(rel)
			<-done
			if inErr != nil {
				return nil, fmt.Errorf("deb: sign %sInRelease: %w", base, inErr)
			}
			if err != nil {
				return nil, fmt.Errorf("deb: sign %sRelease.gpg: %w", base, err)
			}
			files = append(files,
				format.File{Path: base + "InRelease", ContentType: contentTypeText, Data: in},
				format.File{Path: base + "Release.gpg", ContentType: contentTypeSig, Data: gpg})
		}
	}
	return files, nil
}

// release renders a distribution's Release file.
func release(dist string, idx []indexFile, opts format.PublishOptions) []byte {
	comps, archs := map[string]bool{}, map[string]bool{}
	for _, x := range idx {
		parts := strings.Split(x.rel, "/")
		comps[parts[0]] = true
		for _, p := range parts[1:] {
			if a, ok := strings.CutPrefix(p, "binary-"); ok {
				archs[a] = true
			}
		}
	}
	origin, label := opts.Settings.Origin, opts.Settings.Label
	if origin == "" {
		origin = opts.RepoName
	}
	if label == "" {
		label = opts.RepoName
	}
	var b strings.Builder
	field := func(name, value string) { writeField(&b, name, value) }
	field("Origin", origin)
	field("Label", label)
	field("Suite", dist)
	field("Codename", dist)
	field("Date", opts.Time.UTC().Format(releaseDate))
	if opts.Settings.ValidFor > 0 {
		field("Valid-Until", opts.Time.UTC().Add(opts.Settings.ValidFor).Format(releaseDate))
	}
	field("Architectures", strings.Join(sortedKeys(archs), " "))
	field("Components", strings.Join(sortedKeys(comps), " "))
	field("Acquire-By-Hash", "yes")
	field("Description", "packyard repository "+opts.RepoName+", distribution "+dist)
	width := 0
	for _, x := range idx {
		width = max(width, len(strconv.FormatInt(x.blob.Size, 10)))
	}
	for _, h := range []struct {
		name string
		sum  func(format.Blob) string
	}{
		{"MD5Sum", func(bl format.Blob) string { return bl.MD5 }},
		{"SHA1", func(bl format.Blob) string { return bl.SHA1 }},
		{"SHA256", func(bl format.Blob) string { return bl.SHA256 }},
	} {
		b.WriteString(h.name + ":\n")
		for _, x := range idx {
			fmt.Fprintf(&b, " %s %*d %s\n", h.sum(x.blob), width, x.blob.Size, x.rel)
		}
	}
	return []byte(b.String())
}
