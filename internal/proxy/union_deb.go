package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/packyard/packyard/internal/format"
	upidx "github.com/packyard/packyard/internal/format/upstream"
	"github.com/packyard/packyard/internal/meta"
)

// Union mode (deb). A cached .deb keeps its Packages stanza, rendered once
// when the package arrives (meta.ProxyFile.Fragments, with its component
// and architecture). The upstream's InRelease, Release and Release.gpg and
// the index files they name are kept under upstreamPrefix. The
// distribution served is the upstream's: every binary-ARCH Packages index
// is the upstream's stanzas, verbatim, followed by those of the cached
// packages of that component and architecture (or "all") that the
// upstream no longer lists; the other index files (Translation, Contents,
// …) are the upstream's. A Release naming them all (SHA256) is written
// and signed with the repository's keys (InRelease, Release.gpg), and the
// keys are served as key.asc and key.gpg. It is rebuilt when the
// upstream's InRelease (or Release) changes.

// Fragment keys of a cached .deb.
const (
	debFragPackages  = "Packages"
	debFragArch      = "arch"
	debFragComponent = "component"
)

// maxStanza bounds one stanza of an upstream Packages index.
const maxStanza = 1 << 20

// debComponent is the component a pool path names (pool/COMPONENT/…),
// "main" for a package elsewhere.
func debComponent(p string) string {
	if rest, ok := strings.CutPrefix(p, "pool/"); ok {
		if comp, _, ok := strings.Cut(rest, "/"); ok && comp != "" {
			return comp
		}
	}
	return "main"
}

// debFragments renders the stanza a union deb proxy keeps for a cached
// package.
func debFragments(f format.Format, rd io.Reader, pth string, fi format.FileInfo) (map[string][]byte, error) {
	comp := debComponent(pth)
	pk, err := f.Parse(rd, path.Base(pth), format.UploadParams{"distribution": "proxy", "component": comp})
	if err != nil {
		return nil, err
	}
	pk.Path = pth
	frags, err := f.Render(pk, fi)
	if err != nil {
		return nil, err
	}
	st := frags[debFragPackages]
	if len(st) == 0 {
		return nil, errors.New("no Packages stanza rendered")
	}
	return map[string][]byte{debFragPackages: st, debFragArch: []byte(pk.Identity.Arch), debFragComponent: []byte(comp)}, nil
}

// releaseText returns the text of a Release file or of a clearsigned
// InRelease (its signature is not checked: clients of a union proxy trust
// the repository's key, and the upstream's text is only read).
func releaseText(b []byte) ([]byte, error) {
	const begin, sigStart = "-----BEGIN PGP SIGNED MESSAGE-----", "\n-----BEGIN PGP SIGNATURE-----"
	s := string(b)
	i := strings.Index(s, begin)
	if i < 0 {
		return b, nil
	}
	j := strings.Index(s, sigStart)
	if j < i {
		return nil, errors.New("InRelease: clearsigned text without a signature")
	}
	body := s[i+len(begin) : j]
	k := strings.Index(body, "\n\n")
	if k < 0 {
		return nil, errors.New("InRelease: no blank line after the armor headers")
	}
	var out strings.Builder
	for _, line := range strings.Split(body[k+2:], "\n") {
		out.WriteString(strings.TrimPrefix(line, "- ")) // dash-escaping
		out.WriteByte('\n')
	}
	return []byte(out.String()), nil
}

// releaseHeader returns the fields of a Release file to keep in the
// union's: all but the date fields, by-hash, Signed-By and the checksum
// lists, which the union writes itself.
func releaseHeader(text []byte) string {
	drop := map[string]bool{"date": true, "valid-until": true, "acquire-by-hash": true, "signed-by": true,
		"md5sum": true, "sha1": true, "sha256": true, "sha512": true}
	var out strings.Builder
	keep := false
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if keep {
				out.WriteString(line + "\n")
			}
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		keep = ok && !drop[strings.ToLower(strings.TrimSpace(name))]
		if keep {
			out.WriteString(line + "\n")
		}
	}
	return out.String()
}

// debIndexDir reports whether p (relative to the distribution) is a
// binary Packages index and returns its directory ("main/binary-amd64/"),
// component and architecture.
func debIndexDir(p string) (dir, comp, arch string, ok bool) {
	d, base := path.Split(p)
	if base != "Packages" && base != "Packages.gz" && base != "Packages.xz" && base != "Packages.bz2" && base != "Packages.lzma" && base != "Packages.zst" {
		return "", "", "", false
	}
	comp, sub, found := strings.Cut(strings.TrimSuffix(d, "/"), "/")
	arch, isBinary := strings.CutPrefix(sub, "binary-")
	if !found || !isBinary || comp == "" || arch == "" || strings.Contains(arch, "/") {
		return "", "", "", false
	}
	return d, comp, arch, true
}

// buildUnionDeb merges a distribution's binary Packages indexes with the
// stanzas of the cached packages the upstream lacks, and writes and signs
// its Release.
func (p *Proxy) buildUnionDeb(ctx context.Context, rc *repoConfig, cls class, up *meta.ProxyFile) error {
	sg, pub, err := p.unionSigner(rc)
	if err != nil {
		return err
	}
	b, err := p.readBlob(ctx, up.Digest, maxParse)
	if err != nil {
		return fmt.Errorf("read the upstream %s: %w", path.Base(up.Path), err)
	}
	text, err := releaseText(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadGateway, err)
	}
	rel, err := upidx.ParseRelease(text)
	if err != nil {
		return fmt.Errorf("%w: parse the upstream Release: %v", ErrBadGateway, err)
	}
	distDir := path.Dir(cls.group()) + "/" // "dists/stable/"

	// What the group stored of the upstream's distribution, and the
	// cached packages' stanzas.
	stored := map[string]meta.ProxyFile{}
	var cached []meta.ProxyFile
	err = p.meta.ListProxyFiles(ctx, rc.repo.ID, func(f *meta.ProxyFile) error {
		switch {
		case strings.HasPrefix(f.Path, upstreamPrefix+distDir):
			stored[strings.TrimPrefix(f.Path, upstreamPrefix+distDir)] = *f
		case f.Fragments != "" && !strings.HasPrefix(f.Path, upstreamPrefix):
			cached = append(cached, *f)
		}
		return nil
	})
	if err != nil {
		return err
	}
	frags := make([]map[string][]byte, len(cached))
	for i := range cached {
		if frags[i], err = p.readFragments(ctx, &cached[i], maxStanza, "stanza", "deb", debFragPackages); err != nil {
			return err
		}
	}

	// The binary indexes, each merged from the best variant stored.
	type index struct{ comp, arch, src string }
	indexes := map[string]*index{}
	for _, f := range rel.Files {
		dir, comp, arch, ok := debIndexDir(f.Path)
		if !ok {
			continue
		}
		ix := indexes[dir]
		if ix == nil {
			ix = &index{comp: comp, arch: arch}
			indexes[dir] = ix
		}
		if _, have := stored[f.Path]; have && (ix.src == "" || variantRank(f.Path) < variantRank(ix.src)) {
			ix.src = f.Path
		}
	}
	now := p.now()
	var recs []meta.ProxyFile
	var lines []string
	kept := 0
	merged := map[string]bool{}
	dirs := make([]string, 0, len(indexes))
	for d := range indexes {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		ix := indexes[dir]
		var extra [][]byte
		var have map[string]bool
		if ix.src != "" {
			if have, err = p.stanzaDigests(ctx, stored[ix.src].Digest); err != nil {
				return fmt.Errorf("%w: read the upstream %s%s: %v", ErrBadGateway, distDir, ix.src, err)
			}
		}
		for i, f := range cached {
			a, c := string(frags[i][debFragArch]), string(frags[i][debFragComponent])
			if c == ix.comp && (a == ix.arch || a == "all") && !have[f.Digest] {
				extra = append(extra, frags[i][debFragPackages])
			}
		}
		if ix.src == "" && len(extra) == 0 {
			continue // listed upstream, served by no mirror, nothing cached
		}
		kept += len(extra)
		merged[dir] = true
		raw, gz, err := p.mergePackages(ctx, stored, ix.src, extra)
		if err != nil {
			return fmt.Errorf("%w: merge the upstream %s%sPackages: %v", ErrBadGateway, distDir, dir, err)
		}
		for _, m := range []struct {
			name string
			f    mergedFile
			ct   string
		}{{"Packages", raw, "text/plain; charset=utf-8"}, {"Packages.gz", gz, "application/gzip"}} {
			recs = append(recs, meta.ProxyFile{Path: distDir + dir + m.name, Digest: m.f.sha256, Size: m.f.size, ContentType: m.ct,
				Source: "union", FetchedAt: now, UsedAt: now})
			lines = append(lines, fmt.Sprintf(" %s %d %s", m.f.sha256, m.f.size, dir+m.name))
		}
	}
	// Every other file the upstream's Release names, as it is.
	for _, f := range rel.Files {
		if dir, _, _, ok := debIndexDir(f.Path); ok && merged[dir] {
			continue
		}
		lines = append(lines, fmt.Sprintf(" %s %d %s", f.SHA256, f.Size, f.Path))
		if s, ok := stored[f.Path]; ok && s.Digest == f.SHA256 {
			r := s
			r.Path = distDir + f.Path
			r.FetchedAt, r.UsedAt = now, now
			recs = append(recs, r)
		}
	}
	release := releaseHeader(text) + "Date: " + now.UTC().Format("Mon, 02 Jan 2006 15:04:05 UTC") + "\nSHA256:\n" + strings.Join(lines, "\n") + "\n"
	inRelease, err := sg.ClearSign([]byte(release))
	if err != nil {
		return fmt.Errorf("sign InRelease: %w", err)
	}
	detached, err := sg.DetachArmored([]byte(release))
	if err != nil {
		return fmt.Errorf("sign Release: %w", err)
	}
	files := []unionFile{
		{"key.asc", "application/pgp-keys", pub},
		{distDir + "Release", "text/plain; charset=utf-8", []byte(release)},
		{distDir + "Release.gpg", "application/pgp-signature", detached},
		{distDir + "InRelease", "text/plain; charset=utf-8", inRelease},
	}
	if bk, ok := sg.(interface{ PublicKeysBinary() ([]byte, error) }); ok {
		if bin, err := bk.PublicKeysBinary(); err == nil {
			files = append([]unionFile{{"key.gpg", "application/pgp-keys", bin}}, files...)
		}
	}
	if err := p.recordUnion(ctx, rc, cls, up, recs, files); err != nil {
		return err
	}
	p.log.Info("union metadata built", "repo", rc.repo.Name, "path", cls.group(), "cached_packages", len(cached), "kept_beyond_upstream", kept)
	return nil
}

// variantRank orders the variants of a Packages index to read: the ones
// decoded fastest first.
func variantRank(p string) int {
	switch path.Ext(p) {
	case "":
		return 0
	case ".gz":
		return 1
	case ".zst":
		return 2
	case ".xz":
		return 3
	}
	return 4
}

// stanzaDigests returns the SHA256 of every stanza of a Packages index.
func (p *Proxy) stanzaDigests(ctx context.Context, digest string) (map[string]bool, error) {
	in, done, err := p.openIndex(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer done()
	have := map[string]bool{}
	err = eachStanza(in, func(st []byte) error {
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "SHA256:"); ok {
				have[strings.TrimSpace(v)] = true
			}
		}
		return nil
	})
	return have, err
}

// eachStanza calls fn with each stanza of r, its lines without the blank
// line that ends it.
func eachStanza(r io.Reader, fn func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxStanza)
	var st bytes.Buffer
	flush := func() error {
		if st.Len() == 0 {
			return nil
		}
		err := fn(st.Bytes())
		st.Reset()
		return err
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if st.Len()+len(line) > maxStanza {
			return fmt.Errorf("a stanza is larger than %d bytes", maxStanza)
		}
		st.Write(line)
		st.WriteByte('\n')
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("a stanza line is longer than %d bytes", maxStanza)
	} else if err != nil {
		return err
	}
	return flush()
}

// mergedFile is a merged index stored as a blob.
type mergedFile struct {
	sha256 string
	size   int64
}

// mergePackages writes the upstream index src's stanzas (none if src is
// "") and then extra, as Packages and Packages.gz blobs.
func (p *Proxy) mergePackages(ctx context.Context, stored map[string]meta.ProxyFile, src string, extra [][]byte) (mergedFile, mergedFile, error) {
	rawW, err := p.blobs.Create(ctx, 0)
	if err != nil {
		return mergedFile{}, mergedFile{}, err
	}
	gzW, err := p.blobs.Create(ctx, 0)
	if err != nil {
		_ = rawW.Cancel(context.WithoutCancel(ctx))
		return mergedFile{}, mergedFile{}, err
	}
	fail := func(err error) (mergedFile, mergedFile, error) {
		_ = rawW.Cancel(context.WithoutCancel(ctx))
		_ = gzW.Cancel(context.WithoutCancel(ctx))
		return mergedFile{}, mergedFile{}, err
	}
	gz := gzip.NewWriter(gzW)
	out := io.MultiWriter(rawW, gz)
	write := func(st []byte) error {
		st = bytes.TrimRight(st, "\n")
		if _, err := out.Write(st); err != nil {
			return err
		}
		_, err := io.WriteString(out, "\n\n")
		return err
	}
	if src != "" {
		in, done, err := p.openIndex(ctx, stored[src].Digest)
		if err != nil {
			return fail(err)
		}
		err = eachStanza(in, write)
		done()
		if err != nil {
			return fail(err)
		}
	}
	for _, st := range extra {
		if err := write(st); err != nil {
			return fail(err)
		}
	}
	if err := gz.Close(); err != nil {
		return fail(err)
	}
	raw, err := rawW.Commit(ctx, "")
	if err != nil {
		_ = gzW.Cancel(context.WithoutCancel(ctx))
		return mergedFile{}, mergedFile{}, err
	}
	zipped, err := gzW.Commit(ctx, "")
	if err != nil {
		return mergedFile{}, mergedFile{}, err
	}
	return mergedFile{string(raw.Digest), raw.Size}, mergedFile{string(zipped.Digest), zipped.Size}, nil
}
