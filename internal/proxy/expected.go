package proxy

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/meta"
)

// expectedIndex maps the paths of a repository's packages to the digests
// and sizes its cached upstream indexes give them (primary.xml, Packages,
// pacman databases), so that a downloaded package is checked against them.
type expectedIndex struct {
	built time.Time
	files map[string]expectedFile
	// building is closed when a build in progress ends.
	building chan struct{}
}

type expectedFile struct {
	sha256 string
	size   int64
}

// invalidate drops a repository's expected digests after its pointers
// changed.
func (p *Proxy) invalidate(repoID int64) {
	p.mu.Lock()
	if idx := p.indexes[repoID]; idx != nil && idx.building == nil {
		delete(p.indexes, repoID)
	}
	p.mu.Unlock()
}

// expected returns the digest and size an upstream index gives path, or
// "" and -1 when none does (the file is then checked against its
// Content-Length only).
func (p *Proxy) expected(ctx context.Context, rc *repoConfig, pth string) (string, int64) {
	idx := p.index(ctx, rc)
	if idx == nil {
		return "", -1
	}
	if f, ok := idx.files[pth]; ok {
		return f.sha256, f.size
	}
	return "", -1
}

// index returns the repository's expected digests, built from its cached
// indexes when missing or older than max_age.
func (p *Proxy) index(ctx context.Context, rc *repoConfig) *expectedIndex {
	for {
		p.mu.Lock()
		idx := p.indexes[rc.repo.ID]
		switch {
		case idx != nil && idx.building != nil:
			ch := idx.building
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil
			}
		case idx != nil && p.now().Sub(idx.built) < rc.maxAge:
			p.mu.Unlock()
			return idx
		}
		b := &expectedIndex{building: make(chan struct{})}
		p.indexes[rc.repo.ID] = b
		p.mu.Unlock()

		files, err := p.buildIndex(context.WithoutCancel(ctx), rc)
		if err != nil {
			p.log.Warn("cannot read the cached upstream indexes: packages are checked by size only", "repo", rc.repo.Name, "err", err)
		}
		done := &expectedIndex{built: p.now(), files: files}
		p.mu.Lock()
		p.indexes[rc.repo.ID] = done
		p.mu.Unlock()
		close(b.building)
		return done
	}
}

// buildIndex reads every cached index that lists packages.
func (p *Proxy) buildIndex(ctx context.Context, rc *repoConfig) (map[string]expectedFile, error) {
	out := map[string]expectedFile{}
	var srcs []meta.ProxyFile
	debDirs := map[string]meta.ProxyFile{}
	err := p.meta.ListProxyFiles(ctx, rc.repo.ID, func(f *meta.ProxyFile) error {
		base := path.Base(f.Path)
		switch rc.repo.Format {
		case meta.FormatRPM:
			if base == "repomd.xml" {
				srcs = append(srcs, *f)
			}
		case meta.FormatDeb:
			if strings.HasPrefix(f.Path, "dists/") && (base == "Packages" || base == "Packages.gz" || base == "Packages.xz") {
				// One per directory; any is as good as another.
				debDirs[path.Dir(f.Path)] = *f
			}
			if base == "InRelease" || base == "Release" {
				srcs = append(srcs, *f)
			}
		case meta.FormatArch:
			if c := classify(meta.FormatArch, f.Path); c.kind == kindPointer && c.group() == f.Path && strings.Contains(base, ".db") {
				srcs = append(srcs, *f)
			}
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	for _, f := range debDirs {
		srcs = append(srcs, f)
	}
	var errs []error
	for _, f := range srcs {
		if err := p.readIndex(ctx, rc, f, out); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Path, err))
		}
	}
	return out, errors.Join(errs...)
}

func (p *Proxy) readIndex(ctx context.Context, rc *repoConfig, f meta.ProxyFile, out map[string]expectedFile) error {
	add := func(pth, sum string, size int64) error {
		if len(out) >= maxIndexEntries {
			return errIndexTooLarge
		}
		if isHex64(sum) {
			out[pth] = expectedFile{sha256: sum, size: size}
		}
		return nil
	}
	switch {
	case rc.repo.Format == meta.FormatRPM:
		b, err := p.readBlob(ctx, f.Digest, maxParse)
		if err != nil {
			return err
		}
		base := strings.TrimSuffix(path.Dir(path.Dir(strings.TrimPrefix(f.Path, upstreamPrefix))), ".")
		named, err := parseRepomd(b, base)
		if err != nil {
			return err
		}
		if base != "" {
			base += "/"
		}
		for _, nf := range named {
			if err := add(nf.path, nf.sha256, nf.size); err != nil {
				return err
			}
			if strings.Contains(path.Base(nf.path), "primary.xml") {
				if err := p.readPrimary(ctx, nf.sha256, base, add); err != nil {
					return err
				}
			}
		}
		return nil
	case rc.repo.Format == meta.FormatDeb && (strings.HasSuffix(f.Path, "Release")):
		b, err := p.readBlob(ctx, f.Digest, maxParse)
		if err != nil {
			return err
		}
		named, err := parseRelease(b, path.Dir(f.Path)+"/")
		if err != nil {
			return err
		}
		for _, nf := range named {
			if err := add(nf.path, nf.sha256, nf.size); err != nil {
				return err
			}
		}
		return nil
	case rc.repo.Format == meta.FormatDeb:
		return p.readPackages(ctx, f.Digest, add)
	case rc.repo.Format == meta.FormatArch:
		return p.readArchDB(ctx, f.Digest, path.Dir(f.Path), add)
	}
	return nil
}

// readPrimary streams primary.xml for each package's location and sha256.
func (p *Proxy) readPrimary(ctx context.Context, digest, base string, add func(string, string, int64) error) error {
	r, done, err := p.openIndex(ctx, digest)
	if err != nil {
		return err
	}
	defer done()
	g := newTokenGuard(r)
	dec := xml.NewDecoder(g)
	var (
		inPkg      bool
		sum, href  string
		size       int64 = -1
		inChecksum bool
		sha        bool
	)
	for {
		g.next()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("primary.xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "package":
				inPkg, sum, href, size = true, "", "", -1
			case inPkg && t.Name.Local == "checksum":
				inChecksum, sha = true, attr(t, "type") == "sha256"
			case inPkg && t.Name.Local == "location":
				href = attr(t, "href")
			case inPkg && t.Name.Local == "size":
				if n, err := strconv.ParseInt(attr(t, "package"), 10, 64); err == nil {
					size = n
				}
			}
		case xml.CharData:
			if inChecksum && sha && len(sum) < 64 {
				sum += strings.TrimSpace(string(t))
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "checksum":
				inChecksum = false
			case "package":
				inPkg = false
				if href != "" && !strings.Contains(href, "..") && !strings.HasPrefix(href, "/") {
					if err := add(base+href, sum, size); err != nil {
						return err
					}
				}
			}
		}
	}
}

// maxToken bounds one XML token (a tag with its attributes, a text node,
// a comment) of an upstream index. The decompressed size of a whole index
// is bounded (maxIndexBytes), but encoding/xml holds a token in memory
// whole: without this, one text node of gigabytes would be read into
// memory.
const maxToken = 1 << 20

// errTokenTooLarge is a token past maxToken.
var errTokenTooLarge = fmt.Errorf("an XML token (tag, text or comment) is larger than %d bytes", maxToken)

// tokenGuard is the byte reader an xml.Decoder reads through: it fails
// once more than maxToken bytes were read since next was last called
// (before each token).
type tokenGuard struct {
	r *bufio.Reader
	n int
}

func newTokenGuard(r io.Reader) *tokenGuard {
	return &tokenGuard{r: bufio.NewReaderSize(r, 64<<10)}
}

// next starts counting the bytes of a new token.
func (g *tokenGuard) next() { g.n = 0 }

func (g *tokenGuard) ReadByte() (byte, error) {
	if g.n >= maxToken {
		return 0, errTokenTooLarge
	}
	g.n++
	return g.r.ReadByte()
}

// Read is there for io.Reader; the decoder reads byte by byte.
func (g *tokenGuard) Read(p []byte) (int, error) {
	if g.n >= maxToken {
		return 0, errTokenTooLarge
	}
	p = p[:min(len(p), maxToken-g.n)]
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

// readPackages streams an APT Packages file for Filename and SHA256.
func (p *Proxy) readPackages(ctx context.Context, digest string, add func(string, string, int64) error) error {
	r, done, err := p.openIndex(ctx, digest)
	if err != nil {
		return err
	}
	defer done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var file, sum string
	size := int64(-1)
	flush := func() error {
		var err error
		if file != "" && !strings.Contains(file, "..") && !strings.HasPrefix(file, "/") {
			err = add(file, sum, size)
		}
		file, sum, size = "", "", -1
		return err
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Filename":
			file = v
		case "SHA256":
			sum = v
		case "Size":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				size = n
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read Packages index: %w", err)
	}
	return flush()
}

// readArchDB reads a pacman database's desc entries for %FILENAME% and
// %SHA256SUM%.
func (p *Proxy) readArchDB(ctx context.Context, digest, dir string, add func(string, string, int64) error) error {
	r, done, err := p.openIndex(ctx, digest)
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(r)
	prefix := ""
	if dir != "." {
		prefix = dir + "/"
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pacman database: %w", err)
		}
		if path.Base(h.Name) != "desc" || h.Size > 1<<20 {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return fmt.Errorf("pacman database: %w", err)
		}
		fields := map[string]string{}
		var key string
		for _, line := range strings.Split(string(b), "\n") {
			switch {
			case strings.HasPrefix(line, "%") && strings.HasSuffix(line, "%"):
				key = line
			case line == "":
				key = ""
			case key != "" && fields[key] == "":
				fields[key] = line
			}
		}
		name := fields["%FILENAME%"]
		if name == "" || strings.Contains(name, "/") {
			continue
		}
		size := int64(-1)
		if n, err := strconv.ParseInt(fields["%CSIZE%"], 10, 64); err == nil {
			size = n
		}
		if err := add(prefix+name, fields["%SHA256SUM%"], size); err != nil {
			return err
		}
	}
}
