package arch

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/packyard/packyard/internal/format"
)

var _ format.Format = (*Format)(nil)

// Format is the pacman package format: .pkg.tar.{zst,xz,gz} files in
// repositories whose databases are laid out as repo-add writes them. It
// holds no state.
type Format struct{}

// New returns the arch format.
func New() *Format { return &Format{} }

// Name returns "arch".
func (f *Format) Name() string { return "arch" }

// Upload parameters.
const (
	// ParamSignature carries a detached OpenPGP signature of the package
	// (the bytes of NAME.pkg.tar.zst.sig), base64-encoded; it becomes the
	// database's %PGPSIG%.
	ParamSignature = "signature"
	// MaxSignatureSize bounds a package signature.
	MaxSignatureSize = 16 << 10
)

// Fragment kinds: a package's entries in NAME.db (its directory and desc)
// and in NAME.files (directory, desc and files), as tar entries.
const (
	FragDB    = "db"
	FragFiles = "files"
	// FragSig is the package's detached signature, served as FILE.sig
	// (pacman 6.0 downloads it even when the database has %PGPSIG%).
	FragSig = "sig"
)

// DefaultArchitecture is given a database when a repository holds only
// "any" packages and configures no architectures.
const DefaultArchitecture = "x86_64"

// parsed is what Parse keeps for Render.
type parsed struct {
	pkg *Pkg
	sig []byte
}

// Parse reads one package to its end.
func (f *Format) Parse(r io.Reader, filename string, params format.UploadParams) (*format.Package, error) {
	if strings.HasSuffix(filename, ".sig") {
		return nil, fmt.Errorf("%w: %q is a signature: send it with its package (header X-Packyard-Signature, base64; packyard push sends FILE.sig beside FILE)", format.ErrInvalidPackage, filename)
	}
	if !strings.Contains(filename, ".pkg.tar") {
		return nil, fmt.Errorf("%w: %q is not a .pkg.tar.zst, .pkg.tar.xz or .pkg.tar.gz file name", format.ErrInvalidPackage, filename)
	}
	sig, err := signatureParam(params)
	if err != nil {
		return nil, err
	}
	p, err := ReadPackage(r)
	if err != nil {
		return nil, err
	}
	in := p.Info
	epoch, ver, rel := splitPkgver(in.PkgVer)
	file := in.PkgName + "-" + in.PkgVer + "-" + in.Arch + ".pkg.tar." + p.Compression
	return &format.Package{
		Identity: format.Identity{Name: in.PkgName, Epoch: epoch, Version: ver, Release: rel, Arch: in.Arch},
		Summary:  in.PkgDesc,
		Path:     in.Arch + "/" + file,
		Data:     &parsed{pkg: p, sig: sig},
	}, nil
}

// signatureParam decodes and checks an uploaded package signature: one
// or more OpenPGP signature packets, nothing else.
func signatureParam(params format.UploadParams) ([]byte, error) {
	enc := params[ParamSignature]
	if enc == "" {
		return nil, nil
	}
	if len(enc) > base64.StdEncoding.EncodedLen(MaxSignatureSize) {
		return nil, fmt.Errorf("%w: package signature larger than %d bytes", format.ErrInvalidPackage, MaxSignatureSize)
	}
	sig, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: package signature is not base64: %v", format.ErrInvalidPackage, err)
	}
	// packet.Read, not packet.Reader.Next: Next skips marker, trust and
	// unknown non-critical packets, which would then travel unchecked
	// inside %PGPSIG%.
	rd := bytes.NewReader(sig)
	n := 0
	for {
		pk, err := packet.Read(rd)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: package signature is not an OpenPGP signature (give the binary .sig file): %v", format.ErrInvalidPackage, err)
		}
		if _, ok := pk.(*packet.Signature); !ok {
			return nil, fmt.Errorf("%w: package signature holds a %T, not only signature packets", format.ErrInvalidPackage, pk)
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: package signature is empty", format.ErrInvalidPackage)
	}
	return sig, nil
}

// splitPkgver splits "epoch:pkgver-pkgrel".
func splitPkgver(v string) (epoch, ver, rel string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v, rel = v[:i], v[i+1:]
	}
	return epoch, v, rel
}

func fullVersion(id format.Identity) string {
	v := id.Version
	if id.Epoch != "" {
		v = id.Epoch + ":" + v
	}
	if id.Release != "" {
		v += "-" + id.Release
	}
	return v
}

// Scope returns "": pacman repositories have no scopes.
func (f *Format) Scope(p *format.Package, params format.UploadParams) (string, error) {
	return "", nil
}

// Compare orders versions as pacman's vercmp does.
func (f *Format) Compare(a, b format.Identity) int {
	return Vercmp(fullVersion(a), fullVersion(b))
}

// PackageAlias serves an "any" package from every architecture's
// directory: pacman asks for $arch/FILE.
func (f *Format) PackageAlias(p string) (string, bool) {
	dir, file, ok := strings.Cut(p, "/")
	if !ok || dir == "any" || strings.Contains(file, "/") || !strings.Contains(file, "-any.pkg.tar.") {
		return "", false
	}
	return "any/" + file, true
}

// Render renders the package's database entries: a directory NAME-VERSION/
// with desc (NAME.db) and desc plus files (NAME.files), as tar entries
// dated when the file entered the repository.
func (f *Format) Render(p *format.Package, fi format.FileInfo) (map[string][]byte, error) {
	pd, ok := p.Data.(*parsed)
	if !ok {
		return nil, fmt.Errorf("arch: Render of a package that Parse did not return")
	}
	if fi.SHA256 != pd.pkg.SHA256 || fi.Size != pd.pkg.Size {
		return nil, fmt.Errorf("arch: stored file (sha256 %s, %d bytes) is not the file parsed (sha256 %s, %d bytes)", fi.SHA256, fi.Size, pd.pkg.SHA256, pd.pkg.Size)
	}
	in := pd.pkg.Info
	dir := in.PkgName + "-" + in.PkgVer
	desc := descEntry(pd, p.Path[strings.IndexByte(p.Path, '/')+1:])
	files := filesEntry(pd.pkg.Files)
	mtime := fi.Time.UTC().Truncate(time.Second)
	db, err := tarEntries(mtime, dir, tarFile{"desc", desc})
	if err != nil {
		return nil, err
	}
	fl, err := tarEntries(mtime, dir, tarFile{"desc", desc}, tarFile{"files", files})
	if err != nil {
		return nil, err
	}
	frags := map[string][]byte{FragDB: db, FragFiles: fl}
	if pd.sig != nil {
		frags[FragSig] = pd.sig
	}
	return frags, nil
}

// Sidecar serves a package's signature as FILE.sig.
func (f *Format) Sidecar(p string) (string, string, bool) {
	pkg, ok := strings.CutSuffix(p, ".sig")
	if !ok || !strings.Contains(pkg, ".pkg.tar.") {
		return "", "", false
	}
	return pkg, FragSig, true
}

// descEntry is the package's desc file as repo-add writes it: sections
// "%NAME%\nvalue...\n\n", empty ones left out.
func descEntry(pd *parsed, filename string) []byte {
	in, pk := pd.pkg.Info, pd.pkg
	var b strings.Builder
	section := func(name string, values ...string) {
		// repo-add collapses runs of white space and trims the ends.
		var vs []string
		for _, v := range values {
			if v = strings.Join(strings.Fields(v), " "); v != "" {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return
		}
		b.WriteString("%" + name + "%\n")
		for _, v := range vs {
			b.WriteString(v + "\n")
		}
		b.WriteString("\n")
	}
	base := in.PkgBase
	section("FILENAME", filename)
	section("NAME", in.PkgName)
	section("BASE", base)
	section("VERSION", in.PkgVer)
	section("DESC", in.PkgDesc)
	section("GROUPS", in.Group...)
	section("CSIZE", strconv.FormatInt(pk.Size, 10))
	section("ISIZE", strconv.FormatInt(in.Size, 10))
	section("MD5SUM", pk.MD5)
	section("SHA256SUM", pk.SHA256)
	if pd.sig != nil {
		section("PGPSIG", base64.StdEncoding.EncodeToString(pd.sig))
	}
	section("URL", in.URL)
	section("LICENSE", in.License...)
	section("ARCH", in.Arch)
	section("BUILDDATE", strconv.FormatInt(in.BuildDate, 10))
	section("PACKAGER", in.Packager)
	section("REPLACES", in.Replaces...)
	section("CONFLICTS", in.Conflict...)
	section("PROVIDES", in.Provides...)
	section("DEPENDS", in.Depend...)
	section("OPTDEPENDS", in.OptDepend...)
	section("MAKEDEPENDS", in.MakeDepend...)
	section("CHECKDEPENDS", in.CheckDepend...)
	return []byte(b.String())
}

// filesEntry is the package's files file: "%FILES%" and every path, with
// no blank line after the last (as repo-add writes it).
func filesEntry(files []string) []byte {
	var b strings.Builder
	b.WriteString("%FILES%\n")
	for _, f := range files {
		b.WriteString(f + "\n")
	}
	return []byte(b.String())
}

type tarFile struct {
	name string
	data []byte
}

// tarEntries writes a directory and its files as tar entries, without the
// end-of-archive blocks (the stream's footer has them).
func tarEntries(mtime time.Time, dir string, files ...tarFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("arch: tar entry %s: %w", hdr.Name, err)
	}
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("arch: tar entry %s: %w", hdr.Name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarFooter ends a tar archive: two zero blocks.
var tarFooter = make([]byte, 1024)

// architectures returns the architectures that get databases: those of
// the packages (not "any") and the configured ones, or the default.
func architectures(entries []*format.Entry, configured []string) []string {
	set := map[string]bool{}
	for _, a := range configured {
		set[a] = true
	}
	for _, e := range entries {
		if e.Arch != "any" {
			set[e.Arch] = true
		}
	}
	if len(set) == 0 {
		set[DefaultArchitecture] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Streams returns, per architecture, the package database ("ARCH/db")
// and the files database ("ARCH/files"), gzip-compressed tar archives of
// the newest version of each of the architecture's packages and the "any"
// ones (pacman refuses a database with two versions of a package).
func (f *Format) Streams(entries []*format.Entry, opts format.PublishOptions) []format.Stream {
	var out []format.Stream
	for _, a := range architectures(entries, opts.Settings.Architectures) {
		// A sync database names one version of each package: the
		// newest (older ones stay downloadable under their paths).
		newest := map[string]*format.Entry{}
		for _, e := range entries {
			if e.Arch != a && e.Arch != "any" {
				continue
			}
			if cur, ok := newest[e.Identity.Name]; !ok || f.Compare(e.Identity, cur.Identity) > 0 ||
				f.Compare(e.Identity, cur.Identity) == 0 && e.ID > cur.ID {
				newest[e.Identity.Name] = e
			}
		}
		keep := make(map[int64]bool, len(newest))
		for _, e := range newest {
			keep[e.ID] = true
		}
		match := func(e *format.Entry) bool { return keep[e.ID] }
		for _, kind := range []string{FragDB, FragFiles} {
			out = append(out, format.Stream{
				Name: a + "/" + kind, Fragment: kind, Match: match,
				Header: func(int) []byte { return nil }, Footer: tarFooter,
				Encodings: []format.Encoding{format.Gzip},
			})
		}
	}
	return out
}

// Finish returns, per architecture, ARCH/NAME.db.tar.gz and ARCH/NAME.db
// (the same file), ARCH/NAME.files.tar.gz and ARCH/NAME.files, and, when
// the repository is signed, a binary detached signature beside each.
func (f *Format) Finish(built []format.Built, opts format.PublishOptions) ([]format.File, error) {
	// The databases are signed at once: an RSA signature is milliseconds
	// of CPU, and each stream is independent.
	sigs := make([][]byte, len(built))
	errs := make([]error, len(built))
	var wg sync.WaitGroup
	for i, b := range built {
		gz, ok := b.Encoded[format.Gzip]
		if !ok {
			return nil, fmt.Errorf("arch: stream %q has no gzip encoding", b.Name)
		}
		if opts.Signer == nil {
			continue
		}
		wg.Go(func() {
			sig, err := opts.Signer.DetachBinaryState(gz.State)
			if err != nil {
				err = fmt.Errorf("arch: sign %s: %w", b.Name, err)
			}
			sigs[i], errs[i] = sig, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var files []format.File
	for i, b := range built {
		a, kind, ok := strings.Cut(b.Name, "/")
		if !ok {
			return nil, fmt.Errorf("arch: stream %q is not ARCH/KIND", b.Name)
		}
		gz := b.Encoded[format.Gzip]
		base := a + "/" + opts.RepoName + "." + kind
		for _, name := range []string{base + ".tar.gz", base} {
			files = append(files, format.File{Path: name, ContentType: "application/gzip", SHA256: gz.SHA256, Size: gz.Size})
			if sigs[i] != nil {
				files = append(files, format.File{Path: name + ".sig", ContentType: "application/pgp-signature", Data: sigs[i]})
			}
		}
	}
	return files, nil
}
