package proxy

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/meta"
)

// Union mode (pacman). A cached package keeps its entries of NAME.db and
// NAME.files, rendered once when it arrives (meta.ProxyFile.Fragments),
// with the signature (%PGPSIG%) the upstream's database gave it then. The
// upstream's databases are kept under upstreamPrefix. A database served is
// the upstream's entries followed by those of the cached packages whose
// name the upstream no longer has (the newest cached version of each: a
// sync database names one version per package; an older version stays
// downloadable by its path), signed with the repository's key (NAME.db.sig)
// and rebuilt when the upstream's database changes.

// Fragment keys of a cached pacman package, besides arch.FragDB and
// arch.FragFiles.
const (
	archFragName    = "name"
	archFragVersion = "version" // [epoch:]ver-rel
)

// maxDescEntry bounds one entry of a database read for signatures.
const maxDescEntry = 1 << 20

// archSigs remembers the signatures (%PGPSIG%, by %FILENAME%) of the last
// upstream database read, by its digest.
type archSigs struct {
	mu     sync.Mutex
	digest string
	sigs   map[string][]byte
}

// archFragments renders the database entries a union pacman proxy keeps
// for a cached package, with its signature from the upstream's database.
func (p *Proxy) archFragments(ctx context.Context, rc *repoConfig, f format.Format, rd io.Reader, pth string, fi format.FileInfo) (map[string][]byte, error) {
	params := format.UploadParams{}
	if sig := p.archSignature(ctx, rc, pth); sig != nil {
		params[arch.ParamSignature] = base64.StdEncoding.EncodeToString(sig)
	}
	pk, err := f.Parse(rd, path.Base(pth), params)
	if err != nil {
		return nil, err
	}
	pk.Path = pth
	frags, err := f.Render(pk, fi)
	if err != nil {
		return nil, err
	}
	v := pk.Identity.Version
	if pk.Identity.Epoch != "" {
		v = pk.Identity.Epoch + ":" + v
	}
	if pk.Identity.Release != "" {
		v += "-" + pk.Identity.Release
	}
	return map[string][]byte{arch.FragDB: frags[arch.FragDB], arch.FragFiles: frags[arch.FragFiles],
		archFragName: []byte(pk.Identity.Name), archFragVersion: []byte(v)}, nil
}

// archSignature returns the signature the upstream's database in the
// package's directory gives it, nil if none.
func (p *Proxy) archSignature(ctx context.Context, rc *repoConfig, pth string) []byte {
	dir := dirOf(pth)
	var db *meta.ProxyFile
	_ = p.meta.ListProxyFiles(ctx, rc.repo.ID, func(f *meta.ProxyFile) error {
		rest, ok := strings.CutPrefix(f.Path, upstreamPrefix+dir)
		if ok && !strings.Contains(rest, "/") && isArchDB(rest) && strings.Contains(rest, ".db") && db == nil {
			c := *f
			db = &c
		}
		return nil
	})
	if db == nil {
		return nil
	}
	p.archSigs.mu.Lock()
	defer p.archSigs.mu.Unlock()
	if p.archSigs.digest != db.Digest {
		sigs := map[string][]byte{}
		err := p.eachArchEntry(ctx, db.Digest, func(hdr *tar.Header, body []byte) error {
			if path.Base(hdr.Name) != "desc" {
				return nil
			}
			d := parseDesc(body)
			if d["FILENAME"] != "" && d["PGPSIG"] != "" {
				if sig, err := base64.StdEncoding.DecodeString(d["PGPSIG"]); err == nil {
					sigs[d["FILENAME"]] = sig
				}
			}
			return nil
		})
		if err != nil {
			p.log.Warn("union: read the upstream database for signatures", "repo", rc.repo.Name, "path", db.Path, "err", err)
			return nil
		}
		p.archSigs.digest, p.archSigs.sigs = db.Digest, sigs
	}
	return p.archSigs.sigs[path.Base(pth)]
}

// parseDesc reads a desc file: %KEY% lines, each followed by its values
// (joined with newlines) up to a blank line.
func parseDesc(b []byte) map[string]string {
	out := map[string]string{}
	key := ""
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "%") && strings.HasSuffix(line, "%") && len(line) > 2:
			key = line[1 : len(line)-1]
		case line == "":
			key = ""
		case key != "":
			if v, ok := out[key]; ok {
				out[key] = v + "\n" + line
			} else {
				out[key] = line
			}
		}
	}
	return out
}

// eachArchEntry calls fn with each regular entry of a cached database.
func (p *Proxy) eachArchEntry(ctx context.Context, digest string, fn func(*tar.Header, []byte) error) error {
	in, done, err := p.openIndex(ctx, digest)
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(in)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var body []byte
		if hdr.Typeflag == tar.TypeReg {
			if hdr.Size > maxDescEntry {
				return fmt.Errorf("database entry %s of %d bytes", hdr.Name, hdr.Size)
			}
			if body, err = io.ReadAll(tr); err != nil {
				return err
			}
		}
		if err := fn(hdr, body); err != nil {
			return err
		}
	}
}

// buildUnionArch writes a pacman database: the upstream's entries, then
// those of the newest cached version of every package name the upstream
// lacks, signed.
func (p *Proxy) buildUnionArch(ctx context.Context, rc *repoConfig, cls class, up *meta.ProxyFile) error {
	sg, pub, err := p.unionSigner(rc)
	if err != nil {
		return err
	}
	kind := arch.FragDB
	if strings.Contains(path.Base(cls.group()), ".files") {
		kind = arch.FragFiles
	}
	dir := dirOf(cls.group())
	var cached []map[string][]byte
	err = p.meta.ListProxyFiles(ctx, rc.repo.ID, func(f *meta.ProxyFile) error {
		if f.Fragments == "" || strings.HasPrefix(f.Path, upstreamPrefix) || dirOf(f.Path) != dir {
			return nil
		}
		m, err := p.readFragments(ctx, f, maxElement, "entries", "pacman", kind, archFragName)
		if err != nil {
			return err
		}
		cached = append(cached, m)
		return nil
	})
	if err != nil {
		return err
	}

	w, err := p.blobs.Create(ctx, 0)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = w.Cancel(context.WithoutCancel(ctx))
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	gz := gzip.NewWriter(bw)
	tw := tar.NewWriter(gz)
	names := map[string]bool{}
	err = p.eachArchEntry(ctx, up.Digest, func(hdr *tar.Header, body []byte) error {
		if path.Base(hdr.Name) == "desc" {
			if n := parseDesc(body)["NAME"]; n != "" {
				names[n] = true
			}
		}
		h := *hdr
		h.Size = int64(len(body))
		if err := tw.WriteHeader(&h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("%w: read the upstream %s: %v", ErrBadGateway, path.Base(cls.group()), err))
	}
	if err := tw.Flush(); err != nil {
		return fail(err)
	}
	// The newest cached version of each name the upstream lacks.
	f := p.formats[meta.FormatArch]
	newest := map[string]map[string][]byte{}
	for _, m := range cached {
		n := string(m[archFragName])
		if names[n] {
			continue
		}
		if cur, ok := newest[n]; !ok || f.Compare(identity(n, m[archFragVersion]), identity(n, cur[archFragVersion])) > 0 {
			newest[n] = m
		}
	}
	for _, m := range newest {
		if _, err := gz.Write(m[kind]); err != nil {
			return fail(err)
		}
	}
	// The end of the archive: two zero blocks.
	if _, err := gz.Write(make([]byte, 1024)); err != nil {
		return fail(err)
	}
	if err := gz.Close(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	info, err := w.Commit(ctx, "")
	if err != nil {
		return err
	}
	dbBytes, err := p.readBlob(ctx, string(info.Digest), maxPointer)
	if err != nil {
		return err
	}
	sig, err := sg.DetachBinary(dbBytes)
	if err != nil {
		return fmt.Errorf("sign %s: %w", cls.group(), err)
	}
	// One transaction; the signature first, so that in this order a
	// reader of the records sees it before the database it signs.
	now := p.now()
	sigRec := []unionFile{{cls.group() + ".sig", "application/pgp-signature", sig}, {"key.asc", "application/pgp-keys", pub}}
	dbRec := meta.ProxyFile{Path: cls.group(), Digest: string(info.Digest), Size: info.Size, ContentType: "application/gzip",
		ETag: unionTag(up.Digest), Source: "union", FetchedAt: now, UsedAt: now}
	if err := p.recordUnion(ctx, rc, cls, up, nil, sigRec, dbRec); err != nil {
		return err
	}
	p.log.Info("union metadata built", "repo", rc.repo.Name, "path", cls.group(), "cached_packages", len(cached), "kept_beyond_upstream", len(newest))
	return nil
}

// dirOf is the directory of a repository path with its slash, "" at the
// root.
func dirOf(p string) string {
	d := path.Dir(p) + "/"
	if d == "./" {
		return ""
	}
	return d
}

// identity is the format identity of a pacman version string.
func identity(name string, v []byte) format.Identity {
	s := string(v)
	id := format.Identity{Name: name}
	if e, rest, ok := strings.Cut(s, ":"); ok {
		id.Epoch, s = e, rest
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		id.Version, id.Release = s[:i], s[i+1:]
	} else {
		id.Version = s
	}
	return id
}
