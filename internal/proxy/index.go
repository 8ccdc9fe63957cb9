package proxy

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

// namedFile is an index file that a pointer names, with its checksum.
type namedFile struct {
	path   string
	sha256 string
	size   int64
	// optional files may be missing upstream (an APT Release lists
	// uncompressed Packages files that mirrors often do not carry).
	optional bool
}

// namedFiles returns the index files the changed members of a group name,
// to be fetched with it.
func (p *Proxy) namedFiles(ctx context.Context, rc *repoConfig, cls class, members []meta.ProxyFile, changed map[string]bool) ([]namedFile, error) {
	byPath := map[string]meta.ProxyFile{}
	for _, m := range members {
		byPath[m.Path] = m
	}
	var src string
	switch rc.repo.Format {
	case meta.FormatRPM:
		src = cls.group()
	case meta.FormatDeb:
		// InRelease if the upstream has one, else Release.
		for _, m := range []string{cls.member(0), cls.member(1)} {
			if _, ok := byPath[rc.recPath(m)]; ok {
				src = m
				break
			}
		}
	default:
		return nil, nil
	}
	rec, ok := byPath[rc.recPath(src)]
	if !ok || !changed[src] {
		return nil, nil
	}
	b, err := p.readBlob(ctx, rec.Digest, maxParse)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src, err)
	}
	dir := path.Dir(src)
	if rc.repo.Format == meta.FormatRPM {
		// hrefs are relative to the directory holding repodata/.
		return parseRepomd(b, strings.TrimSuffix(path.Dir(dir), "."))
	}
	all, err := parseRelease(b, dir+"/")
	if err != nil {
		return nil, err
	}
	// Contents files can be hundreds of megabytes and only apt-file
	// reads them: they are fetched when asked for, checked against the
	// cached Release.
	var out []namedFile
	for _, nf := range all {
		if !strings.Contains(path.Base(nf.path), "Contents-") {
			out = append(out, nf)
		}
	}
	return out, nil
}

func (p *Proxy) readBlob(ctx context.Context, digest string, limit int64) ([]byte, error) {
	rd, err := p.blobs.Open(ctx, blob.Digest(digest))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// readFragments reads the index entries a union keeps for the cached
// package f (at most limit bytes), refusing a set that lacks one of the
// fragments need names: what is the word for an entry in errors, kind
// the union's format.
func (p *Proxy) readFragments(ctx context.Context, f *meta.ProxyFile, limit int64, what, kind string, need ...string) (map[string][]byte, error) {
	b, err := p.readBlob(ctx, f.Fragments, limit)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, f.Path, err)
	}
	var m map[string][]byte
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s of %s: not ones a %s union keeps: %w", what, f.Path, kind, err)
	}
	for _, n := range need {
		if len(m[n]) == 0 {
			return nil, fmt.Errorf("%s of %s: not ones a %s union keeps (no %s)", what, f.Path, kind, n)
		}
	}
	return m, nil
}

// parseRepomd lists the files a repomd.xml names
// (https://github.com/rpm-software-management/createrepo_c, repomd.xml),
// relative to base ("" or "DIR/").
func parseRepomd(b []byte, base string) ([]namedFile, error) {
	var md struct {
		Data []struct {
			Type     string `xml:"type,attr"`
			Checksum struct {
				Type  string `xml:"type,attr"`
				Value string `xml:",chardata"`
			} `xml:"checksum"`
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
			Size int64 `xml:"size"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("parse repomd.xml: %w", err)
	}
	if base != "" {
		base += "/"
	}
	var out []namedFile
	for _, d := range md.Data {
		href := d.Location.Href
		if href == "" || strings.HasPrefix(href, "/") || strings.Contains(href, "..") || strings.Contains(href, "://") {
			return nil, fmt.Errorf("repomd.xml: %s data has location %q, not a path inside the repository", d.Type, href)
		}
		nf := namedFile{path: base + href, size: -1}
		if d.Size > 0 {
			nf.size = d.Size
		}
		// Without a sha256 the file is fetched unchecked (size only).
		if d.Checksum.Type == "sha256" && isHex64(strings.TrimSpace(d.Checksum.Value)) {
			nf.sha256 = strings.TrimSpace(d.Checksum.Value)
		} else {
			continue
		}
		out = append(out, nf)
	}
	return out, nil
}

// parseRelease lists the files of an APT Release or InRelease file's
// SHA256 field (https://wiki.debian.org/DebianRepository/Format#MD5Sum.2C_SHA1.2C_SHA256),
// relative to base ("dists/DIST/"). Every one is optional: Release files
// list uncompressed indexes that mirrors need not carry.
func parseRelease(b []byte, base string) ([]namedFile, error) {
	var out []namedFile
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "-----BEGIN PGP SIGNATURE-----" {
			break
		}
		if line == "" || (line[0] != ' ' && line[0] != '\t') {
			in = strings.HasPrefix(line, "SHA256:")
			continue
		}
		if !in {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || !isHex64(f[0]) {
			return nil, fmt.Errorf("the Release file's SHA256 line %q is not HASH SIZE PATH", line)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 || strings.HasPrefix(f[2], "/") || strings.Contains(f[2], "..") {
			return nil, fmt.Errorf("the Release file's SHA256 line %q is not HASH SIZE PATH", line)
		}
		out = append(out, namedFile{path: base + f[2], sha256: f[0], size: size, optional: true})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read Release file: %w", err)
	}
	return out, nil
}

// maxIndexBytes bounds the decompressed bytes of one index read to learn
// package digests; maxIndexEntries the entries kept for one repository.
const (
	maxIndexBytes   = 4 << 30
	maxIndexEntries = 4 << 20
)

var errIndexTooLarge = errors.New("index too large")

// decompress returns a reader of b's content, by its magic number.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	nop := func() {}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		return z, nop, err
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, nop, err
		}
		return z, z.Close, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		z, err := xz.NewReader(br)
		return z, nop, err
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nop, nil
	}
	return br, nop, nil
}

// boundedReader fails once more than n bytes were read.
type boundedReader struct {
	r io.Reader
	n int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errIndexTooLarge
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

// openIndex opens a cached index blob decompressed and bounded.
func (p *Proxy) openIndex(ctx context.Context, digest string) (io.Reader, func(), error) {
	rd, err := p.blobs.Open(ctx, blob.Digest(digest))
	if err != nil {
		return nil, nil, err
	}
	r, closeZ, err := decompress(rd)
	if err != nil {
		rd.Close()
		return nil, nil, err
	}
	return &boundedReader{r: r, n: maxIndexBytes}, func() { closeZ(); rd.Close() }, nil
}
