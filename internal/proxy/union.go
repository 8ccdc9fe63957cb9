package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// Union mode (rpm; deb in union_deb.go, pacman in union_arch.go). The cache keeps, for every package it stores, the
// package's primary, filelists and other entries, rendered once when the
// package arrives (meta.ProxyFile.Fragments). The repodata it serves is the
// upstream's current repodata with the entries of every cached package the
// upstream no longer lists appended, under new content-addressed names,
// with a repomd.xml signed by the repository's keys. The upstream's own
// pointer files are kept under upstreamPrefix. The merged files are rebuilt
// when the upstream's repomd.xml changes: a package the upstream prunes
// then stays installable.

// unionStreams are the merged metadata files: repomd data type, root
// element and namespaces (as packyard's own rpm repositories write them).
var unionStreams = [...]struct{ name, root, ns string }{
	{"primary", "metadata", `xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"`},
	{"filelists", "filelists", `xmlns="http://linux.duke.edu/metadata/filelists"`},
	{"other", "otherdata", `xmlns="http://linux.duke.edu/metadata/other"`},
}

// maxElement bounds one <package> element of an upstream index.
const maxElement = 64 << 20

// unionTag marks a merged repomd.xml record with the upstream repomd.xml it
// was built from (in its ETag field, which merged files do not otherwise
// use).
func unionTag(upstreamDigest string) string { return "union:" + upstreamDigest }

// renderFragments parses a cached package and stores its index entries as
// a blob; it returns the blob's digest.
func (p *Proxy) renderFragments(rc *repoConfig, pth string, res *fetched) (string, error) {
	f, ok := p.formats[rc.repo.Format]
	if !ok {
		return "", fmt.Errorf("no %s format", rc.repo.Format)
	}
	rd, err := p.blobs.Open(p.ctx, blob.Digest(res.Digest))
	if err != nil {
		return "", err
	}
	defer rd.Close()
	fi := format.FileInfo{SHA256: res.Digest, Size: res.Size, Time: p.now()}
	keep := map[string][]byte{}
	switch rc.repo.Format {
	case meta.FormatDeb:
		if keep, err = debFragments(f, rd, pth, fi); err != nil {
			return "", err
		}
	case meta.FormatArch:
		if keep, err = p.archFragments(p.ctx, rc, f, rd, pth, fi); err != nil {
			return "", err
		}
	default:
		pk, err := f.Parse(rd, path.Base(pth), nil)
		if err != nil {
			return "", err
		}
		pk.Path = pth
		frags, err := f.Render(pk, fi)
		if err != nil {
			return "", err
		}
		for _, s := range unionStreams {
			keep[s.name] = frags[s.name]
		}
	}
	b, err := json.Marshal(keep)
	if err != nil {
		return "", err
	}
	info, err := blob.Put(p.ctx, p.blobs, b)
	if err != nil {
		return "", err
	}
	return string(info.Digest), nil
}

// ensureUnion builds the merged metadata of a pointer group unless it was
// built from the upstream's current repomd.xml.
func (p *Proxy) ensureUnion(ctx context.Context, rc *repoConfig, cls class) error {
	up, err := p.meta.GetProxyFile(ctx, rc.repo.ID, rc.recPath(cls.group()))
	if errors.Is(err, meta.ErrNotFound) && rc.repo.Format == meta.FormatDeb {
		// An APT upstream without InRelease: its Release.
		up, err = p.meta.GetProxyFile(ctx, rc.repo.ID, rc.recPath(cls.member(1)))
	}
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: the upstream has no %s", ErrNotFound, cls.group())
	}
	if err != nil {
		return err
	}
	cur, err := p.meta.GetProxyFile(ctx, rc.repo.ID, cls.group())
	if err == nil && cur.ETag == unionTag(up.Digest) {
		return nil
	}
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		return err
	}
	key := fmt.Sprintf("%d/union/%s", rc.repo.ID, cls.group())
	p.mu.Lock()
	c, ok := p.groups[key]
	if !ok {
		c = &groupCall{done: make(chan struct{})}
		p.groups[key] = c
		go func() {
			c.err = p.buildUnion(rc, cls, up)
			if c.err != nil {
				p.log.Warn("union metadata not built", "repo", rc.repo.Name, "path", cls.group(), "err", c.err)
			}
			p.mu.Lock()
			delete(p.groups, key)
			p.mu.Unlock()
			close(c.done)
		}()
	}
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// repomdData is one <data> element of a repomd.xml.
type repomdData struct {
	Type     string `xml:"type,attr"`
	Checksum struct {
		Type  string `xml:"type,attr"`
		Value string `xml:",chardata"`
	} `xml:"checksum"`
	OpenChecksum struct {
		Type  string `xml:"type,attr"`
		Value string `xml:",chardata"`
	} `xml:"open-checksum"`
	Location struct {
		Href string `xml:"href,attr"`
	} `xml:"location"`
	Timestamp int64 `xml:"timestamp"`
	Size      int64 `xml:"size"`
	OpenSize  int64 `xml:"open-size"`
}

// buildUnion merges the upstream's primary, filelists and other with the
// entries of the cached packages it lacks, writes and signs a repomd.xml,
// and records it all in one transaction.
func (p *Proxy) buildUnion(rc *repoConfig, cls class, up *meta.ProxyFile) error {
	ctx, cancel := context.WithTimeout(p.ctx, groupTimeout)
	defer cancel()
	switch rc.repo.Format {
	case meta.FormatDeb:
		return p.buildUnionDeb(ctx, rc, cls, up)
	case meta.FormatArch:
		return p.buildUnionArch(ctx, rc, cls, up)
	}
	sg, pub, err := p.unionSigner(rc)
	if err != nil {
		return err
	}
	b, err := p.readBlob(ctx, up.Digest, maxParse)
	if err != nil {
		return fmt.Errorf("read the upstream repomd.xml: %w", err)
	}
	var md struct {
		Data []repomdData `xml:"data"`
	}
	if err := xml.Unmarshal(b, &md); err != nil {
		return fmt.Errorf("parse the upstream repomd.xml: %w", err)
	}
	byType := map[string]repomdData{}
	for _, d := range md.Data {
		byType[d.Type] = d
	}
	dir := path.Dir(cls.group()) // ".../repodata"
	base := strings.TrimSuffix(path.Dir(dir), ".")
	if base != "" {
		base += "/"
	}
	// Every cached package's entries (under this repodata's directory).
	var cached []meta.ProxyFile
	err = p.meta.ListProxyFiles(ctx, rc.repo.ID, func(f *meta.ProxyFile) error {
		if f.Fragments != "" && strings.HasPrefix(f.Path, base) && !strings.HasPrefix(f.Path, upstreamPrefix) {
			cached = append(cached, *f)
		}
		return nil
	})
	if err != nil {
		return err
	}
	frags := make([]map[string][]byte, len(cached))
	for i := range cached {
		if frags[i], err = p.readFragments(ctx, &cached[i], maxElement, "entries", "rpm"); err != nil {
			return err
		}
	}
	now := p.now()
	upstreamIDs := map[string]bool{}
	var recs []meta.ProxyFile
	var out bytes.Buffer
	out.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n")
	fmt.Fprintf(&out, "  <revision>%d</revision>\n", now.Unix())
	for _, s := range unionStreams {
		d, ok := byType[s.name]
		if !ok || d.Checksum.Type != "sha256" {
			return fmt.Errorf("the upstream repomd.xml has no %s data with a sha256 checksum", s.name)
		}
		m, err := p.mergeStream(ctx, s.root, s.ns, strings.TrimSpace(d.Checksum.Value), s.name == "primary", upstreamIDs, cached, frags, s.name)
		if err != nil {
			return fmt.Errorf("merge %s: %w", s.name, err)
		}
		href := "repodata/" + m.gzSHA + "-" + s.name + ".xml.gz"
		recs = append(recs, meta.ProxyFile{Path: base + href, Digest: m.gzSHA, Size: m.gzSize, ContentType: "application/gzip",
			Source: "union", FetchedAt: now, UsedAt: now})
		writeData(&out, s.name, m.gzSHA, m.rawSHA, href, now.Unix(), m.gzSize, m.rawSize)
	}
	// Other data (comps, updateinfo, modules) as the upstream has it;
	// databases and zchunk files describe the upstream's packages only
	// and are left out, so clients read the merged XML.
	for _, d := range md.Data {
		if d.Type == "primary" || d.Type == "filelists" || d.Type == "other" || strings.HasSuffix(d.Type, "_db") || strings.HasSuffix(d.Type, "_zck") {
			continue
		}
		out.WriteString("  <data type=\"" + xmlEscape(d.Type) + "\">\n")
		fmt.Fprintf(&out, "    <checksum type=\"%s\">%s</checksum>\n", xmlEscape(d.Checksum.Type), xmlEscape(strings.TrimSpace(d.Checksum.Value)))
		if d.OpenChecksum.Value != "" {
			fmt.Fprintf(&out, "    <open-checksum type=\"%s\">%s</open-checksum>\n", xmlEscape(d.OpenChecksum.Type), xmlEscape(strings.TrimSpace(d.OpenChecksum.Value)))
		}
		fmt.Fprintf(&out, "    <location href=\"%s\"/>\n    <timestamp>%d</timestamp>\n    <size>%d</size>\n", xmlEscape(d.Location.Href), d.Timestamp, d.Size)
		if d.OpenSize > 0 {
			fmt.Fprintf(&out, "    <open-size>%d</open-size>\n", d.OpenSize)
		}
		out.WriteString("  </data>\n")
	}
	out.WriteString("</repomd>\n")
	repomd := out.Bytes()
	sig, err := sg.DetachArmored(repomd)
	if err != nil {
		return fmt.Errorf("sign repomd.xml: %w", err)
	}
	if err := p.recordUnion(ctx, rc, cls, up, recs, []unionFile{
		{cls.group() + ".key", "application/pgp-keys", pub},
		{cls.group() + ".asc", "application/pgp-signature", sig},
		{cls.group(), "application/xml", repomd},
	}); err != nil {
		return err
	}
	kept := 0
	for _, f := range cached {
		if !upstreamIDs[f.Digest] {
			kept++
		}
	}
	p.log.Info("union metadata built", "repo", rc.repo.Name, "path", cls.group(), "cached_packages", len(cached), "kept_beyond_upstream", kept)
	return nil
}

// unionFile is a file a union build writes: the signed pointer and its
// companions.
type unionFile struct {
	path, ct string
	data     []byte
}

// recordUnion stores files as blobs and records them after recs (the
// merged index files) and before last, in one transaction, the group's
// main file tagged with the upstream pointer it was built from; then
// forgets the cached records.
func (p *Proxy) recordUnion(ctx context.Context, rc *repoConfig, cls class, up *meta.ProxyFile, recs []meta.ProxyFile, files []unionFile, last ...meta.ProxyFile) error {
	now := p.now()
	for _, f := range files {
		info, err := blob.Put(ctx, p.blobs, f.data)
		if err != nil {
			return err
		}
		rec := meta.ProxyFile{Path: f.path, Digest: string(info.Digest), Size: info.Size, ContentType: f.ct,
			Source: "union", FetchedAt: now, UsedAt: now}
		if f.path == cls.group() {
			rec.ETag = unionTag(up.Digest)
		}
		recs = append(recs, rec)
	}
	if err := p.meta.PutProxyFiles(ctx, rc.repo.ID, append(recs, last...)); err != nil {
		return err
	}
	p.invalidate(rc.repo.ID)
	return nil
}

// unionSigner returns the repository's signer and armored public keys.
func (p *Proxy) unionSigner(rc *repoConfig) (format.Signer, []byte, error) {
	if p.signer == nil {
		return nil, nil, errors.New("union mode needs the repository's signing keys")
	}
	sg, pub, err := p.signer(rc.repo)
	if err != nil {
		return nil, nil, fmt.Errorf("signing keys: %w", err)
	}
	if sg == nil {
		return nil, nil, errors.New("union mode needs a signing key: the repository has none")
	}
	return sg, pub, nil
}

func writeData(b *bytes.Buffer, typ, gzSHA, rawSHA, href string, ts, gzSize, rawSize int64) {
	fmt.Fprintf(b, "  <data type=\"%s\">\n    <checksum type=\"sha256\">%s</checksum>\n    <open-checksum type=\"sha256\">%s</open-checksum>\n"+
		"    <location href=\"%s\"/>\n    <timestamp>%d</timestamp>\n    <size>%d</size>\n    <open-size>%d</open-size>\n  </data>\n",
		typ, gzSHA, rawSHA, xmlEscape(href), ts, gzSize, rawSize)
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// merged describes one merged, gzip-compressed metadata file.
type merged struct {
	gzSHA, rawSHA   string
	gzSize, rawSize int64
}

// countHash hashes and counts what is written through it.
type countHash struct {
	h hash.Hash
	n int64
}

func (c *countHash) Write(b []byte) (int, error) {
	c.h.Write(b)
	c.n += int64(len(b))
	return len(b), nil
}

// mergeStream copies the upstream file's <package> elements verbatim,
// then appends the entries of the cached packages the upstream does not
// list (by pkgid, the package's sha256), and stores the result gzipped.
// For primary it fills ids with the upstream's pkgids; the others read it.
func (p *Proxy) mergeStream(ctx context.Context, root, ns, digest string, primary bool, ids map[string]bool,
	cached []meta.ProxyFile, frags []map[string][]byte, kind string) (*merged, error) {
	in, done, err := p.openIndex(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer done()
	w, err := p.blobs.Create(ctx, 0)
	if err != nil {
		return nil, err
	}
	raw := &countHash{h: sha256.New()}
	gz := gzip.NewWriter(w)
	out := io.MultiWriter(gz, raw)
	fail := func(err error) (*merged, error) {
		_ = w.Cancel(context.WithoutCancel(ctx))
		return nil, err
	}
	if _, err := io.WriteString(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<"+root+" "+ns+">\n"); err != nil {
		return fail(err)
	}
	if err := copyPackages(in, out, primary, ids); err != nil {
		return fail(err)
	}
	for i, f := range cached {
		if ids[f.Digest] {
			continue
		}
		if _, err := out.Write(frags[i][kind]); err != nil {
			return fail(err)
		}
	}
	if _, err := io.WriteString(out, "</"+root+">"); err != nil {
		return fail(err)
	}
	if err := gz.Close(); err != nil {
		return fail(err)
	}
	info, err := w.Commit(ctx, "")
	if err != nil {
		return nil, err
	}
	return &merged{gzSHA: string(info.Digest), gzSize: info.Size, rawSHA: hex.EncodeToString(raw.h.Sum(nil)), rawSize: raw.n}, nil
}

// recorder is the byte reader an xml.Decoder reads through; it keeps the
// bytes read since mark, so that elements can be copied verbatim, and
// bounds each token (tokenGuard).
type recorder struct {
	g    *tokenGuard
	buf  []byte
	base int64 // decoder offset of buf[0]
}

func (r *recorder) ReadByte() (byte, error) {
	c, err := r.g.ReadByte()
	if err == nil {
		r.buf = append(r.buf, c)
	}
	return c, err
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.g.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// copyPackages writes every top-level <package> element of in to out,
// byte for byte, each followed by a newline. With primary it records each
// package's sha256 pkgid in ids.
func copyPackages(in io.Reader, out io.Writer, primary bool, ids map[string]bool) error {
	rec := &recorder{g: newTokenGuard(in)}
	dec := xml.NewDecoder(rec)
	dec.Strict = true
	depth := 0
	var stack []string // RawToken does not check that tags match
	var start int64
	inChecksum, sha := false, false
	var pkgid string
	for {
		before := dec.InputOffset()
		rec.g.next()
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			if len(stack) > 0 {
				return fmt.Errorf("index ends inside <%s>", stack[len(stack)-1])
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if len(stack) > 64 {
				return errors.New("elements nested too deeply")
			}
			stack = append(stack, t.Name.Space+":"+t.Name.Local)
			if depth == 2 && t.Name.Local == "package" {
				start, pkgid = before, ""
				for _, a := range t.Attr {
					if a.Name.Local == "pkgid" {
						pkgid = a.Value
					}
				}
			}
			if primary && depth == 3 && t.Name.Local == "checksum" {
				inChecksum, sha = true, false
				for _, a := range t.Attr {
					if a.Name.Local == "type" && a.Value == "sha256" {
						sha = true
					}
				}
			}
		case xml.CharData:
			if inChecksum && sha && len(pkgid) < 64 {
				pkgid += strings.TrimSpace(string(t))
			}
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1] != t.Name.Space+":"+t.Name.Local {
				return fmt.Errorf("element <%s> closed by </%s>", strings.Join(stack, " "), t.Name.Local)
			}
			stack = stack[:len(stack)-1]
			if depth == 3 && t.Name.Local == "checksum" {
				inChecksum = false
			}
			if depth == 2 && t.Name.Local == "package" {
				end := dec.InputOffset()
				if start < rec.base || end-rec.base > int64(len(rec.buf)) {
					return errors.New("lost track of an element's bytes")
				}
				if _, err := out.Write(rec.buf[start-rec.base : end-rec.base]); err != nil {
					return err
				}
				if _, err := io.WriteString(out, "\n"); err != nil {
					return err
				}
				if primary && isHex64(pkgid) {
					ids[pkgid] = true
				}
			}
			depth--
		}
		if depth <= 1 {
			// Between packages: drop what was copied.
			off := dec.InputOffset()
			if keep := off - rec.base; keep > 0 && keep <= int64(len(rec.buf)) {
				rec.buf = append(rec.buf[:0], rec.buf[keep:]...)
				rec.base = off
			}
		} else if int64(len(rec.buf)) > maxElement {
			return fmt.Errorf("a <package> element is larger than %d bytes", maxElement)
		}
	}
}
