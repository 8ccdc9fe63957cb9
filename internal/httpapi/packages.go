package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// packageJSON is the API form of a package.
type packageJSON struct {
	ID           int64     `json:"id"`
	Repo         string    `json:"repo"`
	Name         string    `json:"name"`
	Epoch        string    `json:"epoch,omitempty"`
	Version      string    `json:"version"`
	Release      string    `json:"release,omitempty"`
	Arch         string    `json:"arch"`
	Distribution string    `json:"distribution,omitempty"`
	Component    string    `json:"component,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	Path         string    `json:"path"`
	SHA256       string    `json:"sha256"`
	Size         int64     `json:"size"`
	Summary      string    `json:"summary,omitempty"`
	UploadedBy   string    `json:"uploaded_by,omitempty"`
	UploadedAt   time.Time `json:"uploaded_at"`
}

func toPackageJSON(repoName string, p *meta.Package) packageJSON {
	return packageJSON{
		ID: p.ID, Repo: repoName, Name: p.Name, Epoch: p.Epoch, Version: p.Version, Release: p.Release,
		Arch: p.Arch, Scope: p.Scope, Path: p.Path, SHA256: p.Digest, Size: p.Size, Summary: p.Summary,
		UploadedBy: p.UploadedBy, UploadedAt: p.UploadedAt,
	}
}

// uploadJSON answers an upload.
type uploadJSON struct {
	packageJSON
	Created bool `json:"created"`
	// Generation is the generation that made the package visible; 0 with
	// ?wait=false.
	Generation int64  `json:"generation"`
	URL        string `json:"url"`
}

func (s *Server) uploadPackage(w http.ResponseWriter, r *http.Request) {
	wait := true
	if v := r.URL.Query().Get("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("%w: wait=%q is not true or false", errBadRequest, v))
			return
		}
		wait = b
	}
	params := format.UploadParams{}
	for _, k := range []string{"distribution", "component"} {
		if v := r.URL.Query().Get(k); v != "" {
			params[k] = v
		}
	}
	// A pacman package's detached signature travels with it, base64 in
	// a header (packyard push sends FILE.sig this way).
	if sig := r.Header.Get(SignatureHeader); sig != "" {
		params["signature"] = sig
	}
	res, err := s.upload(w, r, r.PathValue("repo"), r.PathValue("filename"), params, wait)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, s.toUploadJSON(r, r.PathValue("repo"), res))
}

func (s *Server) toUploadJSON(r *http.Request, repoName string, res *repo.Result) uploadJSON {
	return uploadJSON{
		packageJSON: toPackageJSON(repoName, res.Package), Created: res.Created, Generation: res.Generation,
		URL: s.baseURL(r) + "/" + repoName + "/" + res.Package.Path,
	}
}

// upload runs one upload from a request body (API PUT and WebDAV PUT).
func (s *Server) upload(w http.ResponseWriter, r *http.Request, repoName, filename string, params format.UploadParams, wait bool) (*repo.Result, error) {
	if s.opts.MaxUploadSize > 0 && r.ContentLength > s.opts.MaxUploadSize {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the limit of %d bytes (server setting max_upload_size)", errTooLarge, r.ContentLength, s.opts.MaxUploadSize)
	}
	uploader := ""
	if p := principal(r); p != nil {
		uploader = p.Name
	}
	return s.svc.Ingest(r.Context(), repo.Upload{
		Repo: repoName, Filename: filename, Body: s.body(w, r), Params: params, Uploader: uploader, Wait: wait,
	})
}

func (s *Server) listPackages(w http.ResponseWriter, r *http.Request) {
	rp, err := s.svc.GetRepo(r.Context(), r.PathValue("repo"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := meta.PackageQuery{Text: r.URL.Query().Get("q")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.writeError(w, r, fmt.Errorf("%w: limit=%q is not a non-negative number", errBadRequest, v))
			return
		}
		q.Limit = n
	}
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("%w: after=%q is not a package id", errBadRequest, v))
			return
		}
		q.AfterID = n
	}
	pkgs, err := s.svc.Meta().ListPackages(r.Context(), rp.ID, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]packageJSON, 0, len(pkgs))
	for i := range pkgs {
		out = append(out, toPackageJSON(rp.Name, &pkgs[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deletePackage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %q is not a package id", errBadRequest, r.PathValue("id")))
		return
	}
	gen, err := s.svc.RemovePackage(r.Context(), r.PathValue("repo"), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": id, "generation": gen})
}

// SignatureHeader carries a package's detached signature (base64) with an
// upload.
const SignatureHeader = "X-Packyard-Signature"
