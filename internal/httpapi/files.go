package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// serveFile serves GET/HEAD /{repo}/{path...}: a file of the repository's
// current (or a retained) generation, a package, a client configuration
// file, or an HTML directory listing.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	s.serveFileAt(w, r, r.PathValue("repo"), r.PathValue("path"))
}

// serveFileAt serves path p of repository repoName.
func (s *Server) serveFileAt(w http.ResponseWriter, r *http.Request, repoName, p string) {
	if p == "" || strings.HasSuffix(p, "/") {
		s.listing(w, r, repoName, p)
		return
	}
	if strings.Contains(p, "//") || path.Clean("/"+p) != "/"+p {
		s.writeError(w, r, fmt.Errorf("%w: %s", errNotFound, p))
		return
	}
	if snap, rest, ok := strings.Cut(p, "/"); ok && strings.HasPrefix(snap, "@") && len(snap) > 1 {
		s.serveSnapshot(w, r, repoName, snap[1:], rest)
		return
	}
	if rp, err := s.svc.CachedRepo(r.Context(), repoName); err == nil && rp.Kind == meta.KindProxy {
		s.serveProxy(w, r, rp, p)
		return
	}
	obj, err := s.svc.Lookup(r.Context(), repoName, p)
	if errors.Is(err, repo.ErrObjectNotFound) {
		if s.clientConfig(w, r, repoName, p) {
			return
		}
		// A directory without its trailing slash. Listing costs a scan of
		// the repository's packages, so only names that look like
		// directories (no extension) are tried.
		if looksLikeDir(p) {
			if ents, lerr := s.svc.List(r.Context(), repoName, p); lerr == nil && len(ents) > 0 {
				http.Redirect(w, r, "/"+repoName+"/"+p+"/", http.StatusMovedPermanently)
				return
			}
		}
		s.writeError(w, r, fmt.Errorf("%w: %s has no file %s", errNotFound, repoName, p))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveObject(w, r, obj)
}

// looksLikeDir reports whether a missing path may be a directory named
// without its trailing slash: its last element has no extension.
func looksLikeDir(p string) bool {
	return !strings.Contains(path.Base(p), ".")
}

// serveObject serves one blob with ServeContent semantics: Range, HEAD,
// ETag (the digest), If-None-Match, If-Modified-Since.
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request, obj *repo.Object) {
	if s.redirect(w, r, obj) {
		return
	}
	var body io.ReadSeeker
	if obj.Data == nil && r.Method == http.MethodGet && s.cache.Fits(obj.Size) {
		if b, ok := s.cache.Get(obj.Digest); ok {
			body = bytes.NewReader(b)
		}
	}
	if body == nil {
		rd, err := s.svc.Open(r.Context(), obj)
		if err != nil {
			if errors.Is(err, blob.ErrNotFound) {
				err = fmt.Errorf("blob %s of %s is missing from the store (run packyard verify): %w", obj.Digest, obj.Path, err)
			}
			s.writeError(w, r, err)
			return
		}
		defer rd.Close()
		if body, err = s.bufferSmall(r, obj, rd); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	h := w.Header()
	objectHeaders(obj, h.Set)
	// A reader that stalls must not hold the connection forever, but a
	// slow link must still get a large package: the deadline allows the
	// idle timeout plus the size at minDownloadRate. (A deadline set once
	// keeps sendfile; a per-write one would not.)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.writeBudget(obj)))
	// A pointer file (repomd.xml, InRelease, NAME.db) may change several
	// times within a second, and If-Modified-Since has one-second
	// resolution: a client holding the first version would be told 304
	// for the second (pacman sends nothing else). Pointer files therefore
	// carry no Last-Modified and are validated by ETag only; files whose
	// content never changes under their path keep it.
	mod := obj.ModTime
	if !immutable(obj) {
		mod = time.Time{}
	}
	http.ServeContent(w, r, path.Base(obj.Path), mod, body)
}

// bufferMax is the largest file that a remote blob store's reader is read
// whole, before the answer starts.
const bufferMax = 256 << 10

// bufferSmall returns rd, or, for a small file of a store that is not on
// local disk, its bytes read whole: if the store fails meanwhile, the
// client gets a clean 503 instead of a 200 cut short. Index files are such
// files. A local file keeps sendfile; a large file is streamed, and a
// store failing during it cuts the answer short of its Content-Length,
// which every client detects.
//
// A file the read cache takes (read_cache_size; with a local store only
// pointer-sized files) is read whole too, whatever bufferMax says, and
// kept for the next request.
func (s *Server) bufferSmall(r *http.Request, obj *repo.Object, rd io.ReadSeeker) (io.ReadSeeker, error) {
	caching := s.cache.Fits(obj.Size)
	if _, local := rd.(*os.File); local && !caching || obj.Data != nil || obj.Size > bufferMax && !caching || r.Method != http.MethodGet {
		return rd, nil
	}
	b, err := io.ReadAll(io.LimitReader(rd, max(obj.Size, bufferMax)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", obj.Path, err)
	}
	if caching {
		s.cache.Put(obj.Digest, b)
	}
	return bytes.NewReader(b), nil
}

// redirectMin is the smallest package whose download an object store that
// presigns reads (s3_presign_reads) serves itself.
const redirectMin = 1 << 20

// redirecter is a blob store that can send clients to fetch a blob from it
// directly (s3blob with presigned reads).
type redirecter interface {
	RedirectURL(ctx context.Context, d blob.Digest) (string, error)
}

// redirect answers a download of a large package with a redirect to the
// blob store, if the store offers one. Index files are always served
// here: they are small, and a client must get the generation's bytes.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, obj *repo.Object) bool {
	rs, ok := s.svc.Blobs().(redirecter)
	if !ok || !obj.Package || obj.Size < redirectMin || len(obj.Parts) > 0 || r.Method != http.MethodGet {
		return false
	}
	u, err := rs.RedirectURL(r.Context(), blob.Digest(obj.Digest))
	if err != nil || u == "" {
		return false
	}
	w.Header().Set("ETag", `"`+obj.Digest+`"`)
	http.Redirect(w, r, u, http.StatusFound)
	return true
}

// objectHeaders passes set the headers of an answer with obj that
// ServeContent does not set itself (serveObject, serveFastObject).
func objectHeaders(obj *repo.Object, set func(k, v string)) {
	set("Etag", `"`+obj.Digest+`"`)
	ct := obj.ContentType
	if ct == "" {
		ct = contentTypeOf(obj.Path)
	}
	set("Content-Type", ct)
	set("Cache-Control", cacheControl(obj))
	set("X-Packyard-Generation", strconv.FormatInt(obj.Generation, 10))
}

// writeBudget is how long sending obj may take: the idle timeout plus its
// size at minDownloadRate.
func (s *Server) writeBudget(obj *repo.Object) time.Duration {
	return s.opts.BodyIdleTimeout + time.Duration(obj.Size/minDownloadRate)*time.Second
}

// minDownloadRate is the slowest transfer, in bytes per second, that a
// download may run at before its connection is closed.
const minDownloadRate = 16 << 10

// cacheControl marks content-addressed files immutable; pointer files
// (repomd.xml, InRelease, *.db) get a short max-age.
func cacheControl(obj *repo.Object) string {
	if immutable(obj) {
		return "public, max-age=31536000, immutable"
	}
	return "public, max-age=10, must-revalidate"
}

// immutable reports whether the content under obj's path never changes.
func immutable(obj *repo.Object) bool {
	return obj.Package || strings.Contains(obj.Path, obj.Digest) || strings.Contains(obj.Path, "/by-hash/")
}

func contentTypeOf(p string) string {
	switch {
	case strings.HasSuffix(p, ".rpm"):
		return "application/x-rpm"
	case strings.HasSuffix(p, ".deb"), strings.HasSuffix(p, ".udeb"):
		return "application/vnd.debian.binary-package"
	case strings.HasSuffix(p, ".xml"):
		return "application/xml"
	case strings.HasSuffix(p, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(p, ".zst"):
		return "application/zstd"
	case strings.HasSuffix(p, ".xz"):
		return "application/x-xz"
	case strings.HasSuffix(p, ".asc"), strings.HasSuffix(p, ".key"):
		return "application/pgp-keys"
	}
	return "application/octet-stream"
}

// clientConfig serves the ready-to-use client configuration of a
// repository, if p names it.
func (s *Server) clientConfig(w http.ResponseWriter, r *http.Request, repoName, p string) bool {
	rp, err := s.svc.GetRepo(r.Context(), repoName)
	if err != nil {
		return false
	}
	base := s.baseURL(r) + "/" + repoName + "/"
	switch {
	case rp.Format == meta.FormatRPM && p == repoName+".repo":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=60")
		check := "repo_gpgcheck=0\n"
		if s.signed(rp) {
			check = "repo_gpgcheck=1\ngpgkey=" + base + "repodata/repomd.xml.key\n"
		}
		fmt.Fprintf(w, "[%s]\nname=%s (packyard)\nbaseurl=%s\nenabled=1\ngpgcheck=0\n%smetadata_expire=10\n", repoName, repoName, base, check)
		return true
	case rp.Format == meta.FormatArch && p == repoName+".conf":
		s.pacmanConf(w, r, rp, base)
		return true
	case rp.Format == meta.FormatDeb && (p == repoName+".sources" || p == repoName+".list"):
		s.aptSources(w, r, rp, base, strings.HasSuffix(p, ".list"))
		return true
	}
	return false
}

var listingTmpl = template.Must(template.New("listing").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}td{padding:0 1em}td.n{text-align:right}</style></head>
<body><h1>{{.Title}}</h1><table>
{{if .Parent}}<tr><td><a href="../">../</a></td><td></td><td></td></tr>{{end}}
{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td class="n">{{.Size}}</td><td>{{.Time}}</td></tr>
{{end}}</table></body></html>
`))

type listingEntry struct{ Name, Href, Size, Time string }

func (s *Server) listing(w http.ResponseWriter, r *http.Request, repoName, dir string) {
	ents, err := s.svc.List(r.Context(), repoName, dir)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data := struct {
		Title   string
		Parent  bool
		Entries []listingEntry
	}{Title: "/" + repoName + "/" + dir, Parent: true}
	for _, e := range ents {
		le := listingEntry{Name: e.Name, Href: e.Name}
		if e.Dir {
			le.Name += "/"
			le.Href += "/"
		} else {
			le.Size = fmt.Sprint(e.Size)
			le.Time = e.ModTime.UTC().Format("2006-01-02 15:04:05")
		}
		data.Entries = append(data.Entries, le)
	}
	if dir == "" {
		if rp, err := s.svc.GetRepo(r.Context(), repoName); err == nil {
			var extra []string
			switch rp.Format {
			case meta.FormatRPM:
				extra = []string{repoName + ".repo"}
			case meta.FormatDeb:
				extra = []string{repoName + ".sources", repoName + ".list"}
			case meta.FormatArch:
				extra = []string{repoName + ".conf"}
			}
			for _, n := range extra {
				data.Entries = append(data.Entries, listingEntry{Name: n, Href: n})
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_ = listingTmpl.Execute(w, data)
}

func (s *Server) redirectRepo(w http.ResponseWriter, r *http.Request) {
	if _, err := s.svc.GetRepo(r.Context(), r.PathValue("repo")); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.Redirect(w, r, "/"+r.PathValue("repo")+"/", http.StatusMovedPermanently)
}

// index lists the repositories.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	repos, err := s.svc.ListRepos(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data := struct {
		Title   string
		Parent  bool
		Entries []listingEntry
	}{Title: "packyard repositories"}
	for _, rp := range repos {
		data.Entries = append(data.Entries, listingEntry{Name: rp.Name + "/", Href: rp.Name + "/", Size: rp.Format + " " + rp.Kind})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = listingTmpl.Execute(w, data)
}

// signed reports whether a repository's metadata is signed.
func (s *Server) signed(rp *meta.Repo) bool {
	st, err := repo.RepoSettings(rp)
	return err == nil && len(st.KeyNames()) > 0
}

// aptSources serves an APT repository's client configuration: a deb822
// .sources file (one stanza per distribution, as their components may
// differ) or the one-line .list form, both trusting the repository's key
// through signed-by only. ?distribution= narrows it to one distribution.
func (s *Server) aptSources(w http.ResponseWriter, r *http.Request, rp *meta.Repo, base string, oneLine bool) {
	dists := map[string][]string{}
	var names []string
	ents, _ := s.svc.List(r.Context(), rp.Name, "dists/")
	want := r.URL.Query().Get("distribution")
	for _, d := range ents {
		if !d.Dir || (want != "" && d.Name != want) {
			continue
		}
		comps, _ := s.svc.List(r.Context(), rp.Name, "dists/"+d.Name+"/")
		for _, c := range comps {
			if c.Dir && c.Name != "by-hash" {
				dists[d.Name] = append(dists[d.Name], c.Name)
			}
		}
		if len(dists[d.Name]) > 0 {
			names = append(names, d.Name)
		}
	}
	keyring := "/etc/apt/keyrings/" + rp.Name + ".gpg"
	var b strings.Builder
	if s.signed(rp) {
		fmt.Fprintf(&b, "# Install the repository key first:\n#   curl -fsSL %skey.gpg -o %s\n", base, keyring)
	} else {
		b.WriteString("# This repository is not signed: apt refuses it unless trusted=yes is added.\n")
	}
	if len(names) == 0 {
		b.WriteString("# The repository has no distributions yet: upload a package with ?distribution=&component=.\n")
	}
	for i, d := range names {
		comps := strings.Join(dists[d], " ")
		if oneLine {
			opt := ""
			if s.signed(rp) {
				opt = "[signed-by=" + keyring + "] "
			}
			fmt.Fprintf(&b, "deb %s%s %s %s\n", opt, base, d, comps)
			continue
		}
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", base, d, comps)
		if s.signed(rp) {
			fmt.Fprintf(&b, "Signed-By: %s\n", keyring)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = io.WriteString(w, b.String())
}

// pacmanConf serves a pacman.conf section for an arch repository. A signed
// repository's databases must verify (DatabaseRequired); packages need a
// signature only if they were uploaded with one (PackageOptional).
func (s *Server) pacmanConf(w http.ResponseWriter, r *http.Request, rp *meta.Repo, base string) {
	var b strings.Builder
	keys, _ := s.svc.SigningKeys(rp)
	if len(keys) > 0 {
		fmt.Fprintf(&b, "# Trust the repository key first:\n#   curl -fsSL %skey.asc -o /tmp/%s.asc && pacman-key --add /tmp/%s.asc\n", base, rp.Name, rp.Name)
		for _, k := range keys {
			fmt.Fprintf(&b, "#   pacman-key --lsign-key %s\n", k.Fingerprint)
		}
		fmt.Fprintf(&b, "[%s]\nSigLevel = PackageOptional DatabaseRequired\nServer = %s$arch\n", rp.Name, base)
	} else {
		fmt.Fprintf(&b, "# This repository is not signed.\n[%s]\nSigLevel = Optional TrustAll\nServer = %s$arch\n", rp.Name, base)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = io.WriteString(w, b.String())
}
