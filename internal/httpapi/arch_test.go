package httpapi_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/arch"
	"github.com/packyard/packyard/internal/format/arch/archtest"
	"github.com/packyard/packyard/internal/httpapi"
)

// createArchRepo creates a pacman repository; body adds fields to the
// request ("" for none, `"keys":[]` for an unsigned one).
func (e *env) createArchRepo(name, body string) {
	e.t.Helper()
	if body != "" {
		body = "," + body
	}
	r := e.call(http.MethodPost, "/api/v1/repos", e.admin, []byte(`{"name":"`+name+`","format":"arch"`+body+`}`))
	r.want(e.t, http.StatusCreated, "create arch repository "+name)
}

// archSpec is a small valid pacman package whose content depends on
// payload.
func archSpec(name, version, archName, comp, payload string) archtest.Spec {
	return archtest.Spec{
		Name: name, Version: version, Arch: archName, Compression: comp,
		Desc: "packyard test package " + name, URL: "https://example.com/" + name,
		Packager: "T <t@example.com>", Licenses: []string{"MIT"},
		Files: []archtest.File{
			{Path: "usr/share/" + name + "/data.txt", Body: []byte(payload)},
			{Path: "usr/bin/" + name, Body: []byte("#!/bin/sh\necho " + payload + "\n"), Mode: 0o755},
		},
	}
}

func buildArch(t *testing.T, s archtest.Spec) []byte {
	t.Helper()
	b, err := archtest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archPackage is a built package with what the database must say of it.
type archPackage struct {
	spec archtest.Spec
	data []byte
	// desc and files are the entries Render gives the package (the
	// database's must be the same bytes).
	desc, files string
}

// newArchPackage builds s and renders its database entries, with sig as
// its detached signature (nil for none).
func newArchPackage(t *testing.T, s archtest.Spec, sig []byte) archPackage {
	t.Helper()
	data := buildArch(t, s)
	params := format.UploadParams{}
	if sig != nil {
		params[arch.ParamSignature] = base64.StdEncoding.EncodeToString(sig)
	}
	f := arch.New()
	p, err := f.Parse(bytes.NewReader(data), archtest.FileName(s), params)
	if err != nil {
		t.Fatal(err)
	}
	frags, err := f.Render(p, format.FileInfo{SHA256: sha256Hex(data), Size: int64(len(data)), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ents := tarContents(t, bytes.NewReader(frags[arch.FragFiles]))
	dir := s.Name + "-" + s.Version + "/"
	return archPackage{spec: s, data: data, desc: ents[dir+"desc"], files: ents[dir+"files"]}
}

// dir is the package's directory in a database.
func (p archPackage) dir() string { return p.spec.Name + "-" + p.spec.Version + "/" }

// file is the package's file name.
func (p archPackage) file() string { return archtest.FileName(p.spec) }

// tarContents returns every entry of a tar stream by name (directories
// with an empty body), failing on anything but directories and regular
// files.
func tarContents(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
			t.Errorf("tar entry %s of type %q", h.Name, h.Typeflag)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[h.Name]; dup {
			t.Errorf("tar entry %s twice", h.Name)
		}
		out[h.Name] = string(b)
	}
}

// archDB fetches ARCH/REPO.KIND and ARCH/REPO.KIND.tar.gz, checks they
// are the same gzip file, and returns its bytes and its entries.
func (e *env) archDB(repoName, archName, kind string) ([]byte, map[string]string) {
	e.t.Helper()
	base := "/" + repoName + "/" + archName + "/" + repoName + "." + kind
	plain := e.get(base).want(e.t, http.StatusOK, base)
	gz := e.get(base+".tar.gz").want(e.t, http.StatusOK, base+".tar.gz")
	if !bytes.Equal(plain.body, gz.body) {
		e.t.Fatalf("%s (%d bytes) and %s.tar.gz (%d bytes) differ", base, len(plain.body), base, len(gz.body))
	}
	if ct := plain.header.Get("Content-Type"); ct != "application/gzip" {
		e.t.Errorf("%s Content-Type %q, want application/gzip", base, ct)
	}
	zr, err := gzip.NewReader(bytes.NewReader(plain.body))
	if err != nil {
		e.t.Fatalf("%s is not gzip: %v", base, err)
	}
	return plain.body, tarContents(e.t, zr)
}

// checkArchDB checks that ARCH/REPO.db and REPO.files hold exactly the
// entries of pkgs, byte for byte as Render gives them.
func (e *env) checkArchDB(repoName, archName string, pkgs ...archPackage) {
	e.t.Helper()
	_, db := e.archDB(repoName, archName, "db")
	_, files := e.archDB(repoName, archName, "files")
	wantDB, wantFiles := map[string]string{}, map[string]string{}
	for _, p := range pkgs {
		wantDB[p.dir()], wantDB[p.dir()+"desc"] = "", p.desc
		wantFiles[p.dir()], wantFiles[p.dir()+"desc"], wantFiles[p.dir()+"files"] = "", p.desc, p.files
	}
	for _, c := range []struct {
		kind      string
		got, want map[string]string
	}{{"db", db, wantDB}, {"files", files, wantFiles}} {
		var got, want []string
		for n := range c.got {
			got = append(got, n)
		}
		for n := range c.want {
			want = append(want, n)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			e.t.Errorf("%s/%s.%s holds %q, want %q", archName, repoName, c.kind, got, want)
			continue
		}
		for n, body := range c.want {
			if c.got[n] != body {
				e.t.Errorf("%s/%s.%s: %s is\n%s\nwant\n%s", archName, repoName, c.kind, n, c.got[n], body)
			}
		}
	}
}

// uploadArch PUTs a package through the API with an optional signature
// header.
func (e *env) uploadArch(repoName, file string, data []byte, sigHeader string) response {
	e.t.Helper()
	req := e.request(http.MethodPut, "/api/v1/repos/"+repoName+"/packages/"+url.PathEscape(file), e.admin, bytes.NewReader(data))
	if sigHeader != "" {
		req.Header.Set(httpapi.SignatureHeader, sigHeader)
	}
	return e.send(req)
}

// TestArchRepository: packages of x86_64, aarch64 and any, uploaded
// through the API and WebDAV, make per-architecture databases holding
// exactly each architecture's and the any packages, any packages are
// served from every architecture's directory, the databases are signed
// (checked by go-crypto and the real gpgv) and pacman.conf points at
// them.
func TestArchRepository(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	e.createArchRepo("core", "")
	helloX86 := newArchPackage(t, archSpec("hello", "1.0-1", "x86_64", "zst", "x86"), nil)
	helloArm := newArchPackage(t, archSpec("hello", "1.0-1", "aarch64", "xz", "arm"), nil)
	data := newArchPackage(t, archSpec("data", "2:0.5-1", "any", "gz", "any"), nil)
	tool := newArchPackage(t, archSpec("tool", "3.1-2", "x86_64", "zst", "tool"), nil)
	for _, p := range []archPackage{helloX86, helloArm, data} {
		r := e.uploadArch("core", p.file(), p.data, "").want(t, http.StatusCreated, "upload "+p.file())
		got := decodeJSON[pkgInfo](t, r)
		wantPath := p.spec.Arch + "/" + p.file()
		if got.Path != wantPath || got.Name != p.spec.Name || got.Arch != p.spec.Arch || got.URL != e.url+"/core/"+wantPath {
			t.Errorf("upload answer %+v, want path %s", got, wantPath)
		}
	}
	if got := decodeJSON[pkgInfo](t, e.uploadArch("core", data.file(), data.data, "")); got.Epoch != "2" || got.Version != "0.5" || got.Release != "1" {
		t.Errorf("epoch %q version %q release %q, want 2, 0.5, 1", got.Epoch, got.Version, got.Release)
	}
	req := e.request(http.MethodPut, "/dav/core/"+url.PathEscape(tool.file()), e.admin, bytes.NewReader(tool.data))
	e.send(req).want(t, http.StatusCreated, "WebDAV PUT")
	// A signature alone is no package, and the answer says how to send it.
	req = e.request(http.MethodPut, "/dav/core/"+url.PathEscape(tool.file())+".sig", e.admin, strings.NewReader("signature bytes"))
	if msg, _ := e.send(req).want(t, http.StatusBadRequest, "WebDAV PUT of a .sig").apiErr(t); !strings.Contains(msg, httpapi.SignatureHeader) {
		t.Errorf("WebDAV PUT of a .sig: %q", msg)
	}

	e.checkArchDB("core", "x86_64", helloX86, data, tool)
	e.checkArchDB("core", "aarch64", helloArm, data)

	// Packages, any packages from every architecture's directory.
	for _, c := range []struct {
		path string
		want []byte
	}{
		{"x86_64/" + helloX86.file(), helloX86.data},
		{"aarch64/" + helloArm.file(), helloArm.data},
		{"any/" + data.file(), data.data},
		{"x86_64/" + data.file(), data.data},
		{"aarch64/" + data.file(), data.data},
	} {
		r := e.get("/core/"+c.path).want(t, http.StatusOK, c.path)
		if !bytes.Equal(r.body, c.want) {
			t.Errorf("%s: %d bytes that are not the package's %d", c.path, len(r.body), len(c.want))
		}
	}
	for _, p := range []string{"aarch64/" + helloX86.file(), "x86_64/" + helloArm.file(), "any/" + helloX86.file()} {
		e.get("/core/"+p).want(t, http.StatusNotFound, "package under another architecture "+p)
	}

	// Database signatures: one per database file, by the repository key.
	keyGPG := e.get("/core/key.gpg").want(t, http.StatusOK, "key.gpg").body
	ring, fprs := publicKeys(t, keyGPG)
	if seed := fprOf(readEntities(t, seedArmored(t))[0]); !slices.Equal(fprs, []string{seed}) {
		t.Fatalf("key.gpg holds %v, want the default key %s", fprs, seed)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyring := write("key.gpg", keyGPG)
	gpgv := gpgvPath(t)
	for _, a := range []string{"x86_64", "aarch64"} {
		for _, kind := range []string{"db", "files"} {
			body, _ := e.archDB("core", a, kind)
			for _, name := range []string{"core." + kind, "core." + kind + ".tar.gz"} {
				p := "/core/" + a + "/" + name + ".sig"
				r := e.get(p).want(t, http.StatusOK, p)
				if ct := r.header.Get("Content-Type"); ct != "application/pgp-signature" {
					t.Errorf("%s Content-Type %q", p, ct)
				}
				if bytes.HasPrefix(r.body, []byte("-----BEGIN")) {
					t.Fatalf("%s is armored; pacman reads binary signatures", p)
				}
				if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(body), bytes.NewReader(r.body), nil); err != nil {
					t.Errorf("%s does not verify: %v", p, err)
				}
				tampered := append(slices.Clone(body), 0)
				if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(tampered), bytes.NewReader(r.body), nil); err == nil {
					t.Errorf("%s verifies a changed database", p)
				}
				if name != "core."+kind {
					continue
				}
				file := write(a+"-"+name, body)
				sig := write(a+"-"+name+".sig", r.body)
				cmd := exec.Command(gpgv, "--keyring", keyring, sig, file)
				cmd.Env = append(os.Environ(), "GNUPGHOME="+dir, "LC_ALL=C")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("gpgv rejects %s: %v\n%s", p, err, out)
				} else if !strings.Contains(string(out), "Good signature") {
					t.Errorf("gpgv on %s:\n%s", p, out)
				}
				cmd = exec.Command(gpgv, "--keyring", keyring, sig, write(a+"-"+name+".tampered", tampered))
				cmd.Env = append(os.Environ(), "GNUPGHOME="+dir, "LC_ALL=C")
				if out, err := cmd.CombinedOutput(); err == nil {
					t.Errorf("gpgv accepts a changed %s:\n%s", p, out)
				}
			}
		}
	}

	// pacman.conf: the repository section, $arch in the server URL, the
	// database signature required.
	conf := string(e.get("/core/core.conf").want(t, http.StatusOK, "core.conf").body)
	for _, want := range []string{"\n[core]\n", "\nSigLevel = PackageOptional DatabaseRequired\n", "\nServer = " + e.url + "/core/$arch\n", fprs[0]} {
		if !strings.Contains(conf, want) {
			t.Errorf("core.conf lacks %q:\n%s", want, conf)
		}
	}
	if !strings.Contains(conf, e.url+"/core/key.asc") {
		t.Errorf("core.conf does not say where the key is:\n%s", conf)
	}
	e.get("/core/key.asc").want(t, http.StatusOK, "the key core.conf names")
	// The Server URL with $arch filled in is where pacman finds the
	// database and its signature.
	for _, line := range strings.Split(conf, "\n") {
		if server, ok := strings.CutPrefix(line, "Server = "); ok {
			base := strings.TrimPrefix(strings.ReplaceAll(server, "$arch", "aarch64"), e.url)
			e.get(base+"/core.db").want(t, http.StatusOK, "the database under Server")
			e.get(base+"/core.db.sig").want(t, http.StatusOK, "the database signature under Server")
		}
	}
}

// TestArchUnsignedRepository: no signatures, and pacman.conf does not
// require them.
func TestArchUnsignedRepository(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	e.createArchRepo("plain", `"keys":[]`)
	p := newArchPackage(t, archSpec("hello", "1.0-1", "x86_64", "zst", "x"), nil)
	e.uploadArch("plain", p.file(), p.data, "").want(t, http.StatusCreated, "upload")
	e.checkArchDB("plain", "x86_64", p)
	for _, f := range []string{"x86_64/plain.db.sig", "x86_64/plain.db.tar.gz.sig", "x86_64/plain.files.sig", "key.gpg"} {
		e.get("/plain/"+f).want(t, http.StatusNotFound, "unsigned "+f)
	}
	conf := string(e.get("/plain/plain.conf").want(t, http.StatusOK, "plain.conf").body)
	if !strings.Contains(conf, "\n[plain]\n") || !strings.Contains(conf, "\nServer = "+e.url+"/plain/$arch\n") ||
		strings.Contains(conf, "Required") {
		t.Errorf("plain.conf:\n%s", conf)
	}
}

// TestArchPackageSignature: a package uploaded with X-Packyard-Signature
// has %PGPSIG% in its desc and its .sig served beside it; a header that
// is not a binary signature is refused and leaves nothing behind.
func TestArchPackageSignature(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	e.createArchRepo("r", "")
	signer := readEntities(t, seedArmored(t))[0]
	sign := func(data []byte) []byte {
		var b bytes.Buffer
		if err := openpgp.DetachSign(&b, signer, bytes.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	hello := buildArch(t, archSpec("hello", "1.0-1", "x86_64", "zst", "signed"))
	data := buildArch(t, archSpec("data", "1.0-1", "any", "zst", "signed any"))
	helloSig, dataSig := sign(hello), sign(data)
	helloPkg := newArchPackage(t, archSpec("hello", "1.0-1", "x86_64", "zst", "signed"), helloSig)
	dataPkg := newArchPackage(t, archSpec("data", "1.0-1", "any", "zst", "signed any"), dataSig)
	if !strings.Contains(helloPkg.desc, "%PGPSIG%\n"+base64.StdEncoding.EncodeToString(helloSig)+"\n") {
		t.Fatalf("rendered desc lacks the signature:\n%s", helloPkg.desc)
	}

	// Refused signatures first: nothing may remain of them.
	blobs := e.blobCount()
	var armored bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&armored, signer, bytes.NewReader(hello), nil); err != nil {
		t.Fatal(err)
	}
	for name, header := range map[string]string{
		"armored":    base64.StdEncoding.EncodeToString(armored.Bytes()),
		"not base64": "not base64!",
		"garbage":    base64.StdEncoding.EncodeToString([]byte("not a signature")),
		"oversized":  base64.StdEncoding.EncodeToString(bytes.Repeat(helloSig, arch.MaxSignatureSize/len(helloSig)+1)),
	} {
		r := e.uploadArch("r", helloPkg.file(), hello, header)
		if r.status != http.StatusBadRequest {
			t.Fatalf("%s signature: got %v, want 400", name, r)
		}
		if msg, _ := r.apiErr(t); !strings.Contains(msg, "signature") {
			t.Errorf("%s signature: message %q does not name the signature", name, msg)
		}
	}
	if n := e.blobCount(); n != blobs {
		t.Errorf("blob count went from %d to %d through refused signatures", blobs, n)
	}
	if n := e.tempCount(); n != 0 {
		t.Errorf("%d temporary files after refused signatures", n)
	}
	if pk := e.packages("r"); len(pk) != 0 {
		t.Errorf("%d packages after refused signatures", len(pk))
	}

	e.uploadArch("r", helloPkg.file(), hello, base64.StdEncoding.EncodeToString(helloSig)).want(t, http.StatusCreated, "signed upload")
	e.uploadArch("r", dataPkg.file(), data, base64.StdEncoding.EncodeToString(dataSig)).want(t, http.StatusCreated, "signed any upload")
	e.checkArchDB("r", "x86_64", helloPkg, dataPkg)
	ring := openpgp.EntityList{signer}
	for _, c := range []struct {
		path      string
		data, sig []byte
	}{
		{"x86_64/" + helloPkg.file(), hello, helloSig},
		{"any/" + dataPkg.file(), data, dataSig},
		{"x86_64/" + dataPkg.file(), data, dataSig},
	} {
		got := e.get("/r/"+c.path+".sig").want(t, http.StatusOK, c.path+".sig").body
		if !bytes.Equal(got, c.sig) {
			t.Errorf("%s.sig is not the uploaded signature", c.path)
		}
		if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(c.data), bytes.NewReader(got), nil); err != nil {
			t.Errorf("%s.sig does not verify the package: %v", c.path, err)
		}
	}
}

// TestArchReupload: the same bytes again answer 200; other bytes with the
// same name, version and architecture 409, whatever the file is called.
func TestArchReupload(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createArchRepo("r", "")
	p := newArchPackage(t, archSpec("hello", "1.0-1", "x86_64", "zst", "first"), nil)
	first := decodeJSON[pkgInfo](t, e.uploadArch("r", p.file(), p.data, "").want(t, http.StatusCreated, "first upload"))
	again := decodeJSON[pkgInfo](t, e.uploadArch("r", p.file(), p.data, "").want(t, http.StatusOK, "identical upload"))
	if again.Created || again.ID != first.ID {
		t.Errorf("identical upload answered %+v, first %+v", again, first)
	}
	blobs := e.blobCount()
	other := buildArch(t, archSpec("hello", "1.0-1", "x86_64", "zst", "other bytes"))
	otherComp := buildArch(t, archSpec("hello", "1.0-1", "x86_64", "xz", "first"))
	for name, b := range map[string][]byte{p.file(): other, "renamed.pkg.tar.zst": other, "hello-1.0-1-x86_64.pkg.tar.xz": otherComp} {
		r := e.uploadArch("r", name, b, "")
		if r.status != http.StatusConflict {
			t.Fatalf("other bytes as %s: got %v, want 409", name, r)
		}
		if msg, _ := r.apiErr(t); !strings.Contains(msg, p.spec.Arch+"/"+p.file()) {
			t.Errorf("conflict message %q does not name the package in the way", msg)
		}
	}
	if n := e.blobCount(); n != blobs {
		t.Errorf("blobs went from %d to %d through conflicts", blobs, n)
	}
	if n := e.tempCount(); n != 0 {
		t.Errorf("%d temporary files after conflicts", n)
	}
	if pk := e.packages("r"); len(pk) != 1 {
		t.Errorf("%d packages, want 1", len(pk))
	}
	e.checkArchDB("r", "x86_64", p)
}

// TestArchNewerVersion: a newer version is in the database once its
// upload returns, in place of the older one (pacman refuses a database
// with two versions of a package), which stays downloadable; an older
// upload does not replace it, and removing the newest brings back the
// one before.
func TestArchNewerVersion(t *testing.T) {
	e := newEnv(t, envOptions{keys: true})
	e.createArchRepo("r", "")
	v1 := newArchPackage(t, archSpec("hello", "1.0-1", "x86_64", "zst", "v1"), nil)
	v2 := newArchPackage(t, archSpec("hello", "1.10-1", "x86_64", "zst", "v2"), nil)
	older := newArchPackage(t, archSpec("hello", "1.9-1", "x86_64", "zst", "older"), nil)
	e.uploadArch("r", v1.file(), v1.data, "").want(t, http.StatusCreated, "upload 1.0-1")
	e.checkArchDB("r", "x86_64", v1)
	up := decodeJSON[pkgInfo](t, e.uploadArch("r", v2.file(), v2.data, "").want(t, http.StatusCreated, "upload 1.10-1"))
	e.checkArchDB("r", "x86_64", v2)
	if !bytes.Equal(e.get("/r/x86_64/"+v1.file()).want(t, http.StatusOK, "the older package").body, v1.data) {
		t.Error("the older package's bytes changed")
	}
	e.uploadArch("r", older.file(), older.data, "").want(t, http.StatusCreated, "upload 1.9-1 after 1.10-1")
	e.checkArchDB("r", "x86_64", v2)
	e.call(http.MethodDelete, fmt.Sprintf("/api/v1/repos/r/packages/%d", up.ID), e.admin, nil).want(t, http.StatusOK, "remove 1.10-1")
	e.checkArchDB("r", "x86_64", older)
	// The signature of the database follows its content.
	db, _ := e.archDB("r", "x86_64", "db")
	sig := e.get("/r/x86_64/r.db.sig").want(t, http.StatusOK, "r.db.sig").body
	ring, _ := publicKeys(t, e.get("/r/key.gpg").want(t, http.StatusOK, "key.gpg").body)
	if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(db), bytes.NewReader(sig), nil); err != nil {
		t.Errorf("r.db.sig after the removal: %v", err)
	}
}

// TestArchUploadMalformedCorpus sends every malformed package through
// HTTP: each is refused with 400 or 413 and a message, and nothing
// remains.
func TestArchUploadMalformedCorpus(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createArchRepo("r", "")
	valid := archSpec("victim", "1.0-1", "x86_64", "zst", "the valid package the corpus is derived from")
	cases := archtest.Malformed(valid)
	if len(cases) < 40 {
		t.Fatalf("archtest.Malformed returned %d cases", len(cases))
	}
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			blobs := e.blobCount()
			r := e.uploadArch("r", fmt.Sprintf("bad-%03d.pkg.tar.zst", i), c.Data, "")
			want := http.StatusBadRequest
			if c.TooLarge {
				want = http.StatusRequestEntityTooLarge
			}
			if r.status != want {
				t.Fatalf("got %v, want %d", r, want)
			}
			msg, _ := r.apiErr(t)
			if msg == "" || strings.HasPrefix(msg, "internal error") || !strings.Contains(msg, "arch") {
				t.Errorf("message %q does not say what is wrong", msg)
			}
			if n := e.blobCount(); n != blobs {
				t.Errorf("blob count went from %d to %d through a refused upload", blobs, n)
			}
			if n := e.tempCount(); n != 0 {
				t.Errorf("%d temporary files left by a refused upload", n)
			}
		})
	}
	if pk := e.packages("r"); len(pk) != 0 {
		t.Errorf("%d packages after the malformed corpus, want 0", len(pk))
	}
	p := newArchPackage(t, valid, nil)
	e.uploadArch("r", p.file(), p.data, "").want(t, http.StatusCreated, "the valid original")
	e.checkArchDB("r", "x86_64", p)
}
