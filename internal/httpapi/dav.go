package httpapi

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// The WebDAV view of a hosted repository (RFC 4918, class 1): a package
// appears as <scope>/<file name>, where the scope is empty for rpm and
// "distribution/component" for deb. PUT uploads, DELETE removes (admin),
// PROPFIND lists. There are no locks (class 2) and collections are fixed.

func (s *Server) davOptions(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("DAV", "1")
	h.Set("MS-Author-Via", "DAV")
	h.Set("Allow", "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, MKCOL")
	w.WriteHeader(http.StatusOK)
}

// davName is the WebDAV path of a package.
func davName(p *meta.Package) string {
	if p.Scope == "" {
		return path.Base(p.Path)
	}
	return p.Scope + "/" + path.Base(p.Path)
}

// davParams turns a WebDAV directory into upload parameters.
func davParams(rp *meta.Repo, dir string) (format.UploadParams, error) {
	dir = strings.Trim(dir, "/")
	params := format.UploadParams{}
	if dir == "" {
		return params, nil
	}
	parts := strings.Split(dir, "/")
	if rp.Format == meta.FormatDeb && len(parts) == 2 {
		params["distribution"], params["component"] = parts[0], parts[1]
		return params, nil
	}
	if rp.Format == meta.FormatDeb {
		return nil, fmt.Errorf("%w: upload into /dav/%s/<distribution>/<component>/", errBadRequest, rp.Name)
	}
	return nil, fmt.Errorf("%w: upload into /dav/%s/ directly; %s repositories have no sub-collections", errBadRequest, rp.Name, rp.Format)
}

func (s *Server) davPut(w http.ResponseWriter, r *http.Request) {
	rp, err := s.svc.GetRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p := r.PathValue("path")
	dir, file := path.Split(p)
	if file == "" {
		s.writeError(w, r, fmt.Errorf("%w: PUT needs a file name", errBadRequest))
		return
	}
	params, err := davParams(rp, dir)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.upload(w, r, rp.Name, file, params, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+res.Package.Digest+`"`)
	if !res.Created {
		// Identical content was already there: nothing changed.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusCreated, s.toUploadJSON(r, rp.Name, res))
}

// davFind returns the live package at a WebDAV path.
func (s *Server) davFind(r *http.Request, rp *meta.Repo, p string) (*meta.Package, error) {
	pkgs, err := s.svc.Meta().ListPackages(r.Context(), rp.ID, meta.PackageQuery{})
	if err != nil {
		return nil, err
	}
	for i := range pkgs {
		if davName(&pkgs[i]) == p {
			return &pkgs[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no package at /dav/%s/%s", errNotFound, rp.Name, p)
}

func (s *Server) davDelete(w http.ResponseWriter, r *http.Request) {
	rp, err := s.svc.GetRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pk, err := s.davFind(r, rp, r.PathValue("path"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.svc.RemovePackage(r.Context(), rp.Name, pk.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) davGet(w http.ResponseWriter, r *http.Request) {
	rp, err := s.svc.GetRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p := r.PathValue("path")
	if p == "" || strings.HasSuffix(p, "/") {
		http.Redirect(w, r, "/"+rp.Name+"/", http.StatusFound)
		return
	}
	pk, err := s.davFind(r, rp, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.serveObject(w, r, &repo.Object{Path: pk.Path, Digest: pk.Digest, Size: pk.Size, ModTime: pk.UploadedAt, Package: true})
}

func (s *Server) davMkcol(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "collections of a packyard repository are fixed; upload files with PUT", http.StatusForbidden)
}

// multistatus is a PROPFIND answer.
type multistatus struct {
	XMLName   xml.Name      `xml:"D:multistatus"`
	XMLNS     string        `xml:"xmlns:D,attr"`
	Responses []davResponse `xml:"D:response"`
}

type davResponse struct {
	Href     string      `xml:"D:href"`
	Propstat davPropstat `xml:"D:propstat"`
}

type davPropstat struct {
	Prop   davProp `xml:"D:prop"`
	Status string  `xml:"D:status"`
}

type davProp struct {
	DisplayName   string     `xml:"D:displayname"`
	ResourceType  davResType `xml:"D:resourcetype"`
	ContentLength *int64     `xml:"D:getcontentlength,omitempty"`
	LastModified  string     `xml:"D:getlastmodified,omitempty"`
	ETag          string     `xml:"D:getetag,omitempty"`
	ContentType   string     `xml:"D:getcontenttype,omitempty"`
}

type davResType struct {
	Collection *struct{} `xml:"D:collection,omitempty"`
}

func davCollection(href, name string) davResponse {
	return davResponse{Href: href, Propstat: davPropstat{Status: "HTTP/1.1 200 OK",
		Prop: davProp{DisplayName: name, ResourceType: davResType{Collection: &struct{}{}}}}}
}

func davFile(href string, p *meta.Package) davResponse {
	size := p.Size
	return davResponse{Href: href, Propstat: davPropstat{Status: "HTTP/1.1 200 OK", Prop: davProp{
		DisplayName: path.Base(p.Path), ContentLength: &size,
		LastModified: p.UploadedAt.UTC().Format(http.TimeFormat), ETag: `"` + p.Digest + `"`,
		ContentType: contentTypeOf(p.Path),
	}}}
}

func writeMultistatus(w http.ResponseWriter, resp []davResponse) {
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(multistatus{XMLNS: "DAV:", Responses: resp})
}

func (s *Server) davRoot(w http.ResponseWriter, r *http.Request) {
	resp := []davResponse{davCollection("/dav/", "dav")}
	if r.Header.Get("Depth") != "0" {
		repos, err := s.svc.ListRepos(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, rp := range repos {
			if rp.Kind == meta.KindHosted {
				resp = append(resp, davCollection("/dav/"+rp.Name+"/", rp.Name))
			}
		}
	}
	writeMultistatus(w, resp)
}

func (s *Server) davPropfind(w http.ResponseWriter, r *http.Request) {
	rp, err := s.svc.GetRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p := strings.TrimSuffix(r.PathValue("path"), "/")
	pkgs, err := s.svc.Meta().ListPackages(r.Context(), rp.ID, meta.PackageQuery{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	base := "/dav/" + rp.Name + "/"
	depth0 := r.Header.Get("Depth") == "0"
	// Collections are the scopes' directories; files are the packages.
	dirs := map[string]bool{"": true}
	for i := range pkgs {
		d := path.Dir(davName(&pkgs[i]))
		for d != "." && d != "/" && !dirs[d] {
			dirs[d] = true
			d = path.Dir(d)
		}
	}
	for i := range pkgs {
		if davName(&pkgs[i]) == p {
			writeMultistatus(w, []davResponse{davFile(base+p, &pkgs[i])})
			return
		}
	}
	if !dirs[p] {
		s.writeError(w, r, fmt.Errorf("%w: no such file or collection /dav/%s/%s", errNotFound, rp.Name, p))
		return
	}
	href := base
	if p != "" {
		href += p + "/"
	}
	resp := []davResponse{davCollection(href, path.Base("/"+rp.Name+"/"+p))}
	if !depth0 {
		var children []davResponse
		for d := range dirs {
			if d != "" && path.Dir(d) == dirOrDot(p) {
				children = append(children, davCollection(base+d+"/", path.Base(d)))
			}
		}
		for i := range pkgs {
			n := davName(&pkgs[i])
			if dirOrDot(p) == path.Dir(n) {
				children = append(children, davFile(base+n, &pkgs[i]))
			}
		}
		sort.Slice(children, func(i, j int) bool { return children[i].Href < children[j].Href })
		resp = append(resp, children...)
	}
	writeMultistatus(w, resp)
}

func dirOrDot(p string) string {
	if p == "" {
		return "."
	}
	return p
}
