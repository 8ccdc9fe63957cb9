package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/packyard/packyard/bench/internal/gnupg"
)

// fetchFunc reads a file of a published repository by its path below the
// repository root ("x86_64/bench.db").
type fetchFunc func(rel string) ([]byte, error)

// fileFetch reads a published repository from a directory.
func fileFetch(root string) fetchFunc {
	return func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(root, rel)) }
}

// dbEntry is what a database says about one package.
type dbEntry struct {
	filename, sha256 string
	files            bool // a files entry (NAME.files only)
}

// readDB returns the entries of a package database (NAME.db or
// NAME.files: a tar archive compressed with gzip, in one member or
// several), by directory, NAME-VERSION. The format is repo-add's: a
// directory per package holding desc and, in NAME.files, files.
func readDB(b []byte) (map[string]*dbEntry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	out := map[string]*dbEntry{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		dir, name := path.Split(strings.TrimSuffix(h.Name, "/"))
		if h.Typeflag == tar.TypeDir && dir == "" {
			out[name] = &dbEntry{}
			continue
		}
		e := out[strings.TrimSuffix(dir, "/")]
		if e == nil {
			return nil, fmt.Errorf("%s: not in a package directory listed before it", h.Name)
		}
		switch name {
		case "files":
			e.files = true
		case "desc":
			body, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", h.Name, err)
			}
			fields := descFields(body)
			e.filename, e.sha256 = fields["FILENAME"], fields["SHA256SUM"]
		}
	}
}

// descFields returns the first value of each %FIELD% of a desc file.
func descFields(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	key := ""
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "%") && strings.HasSuffix(l, "%") && len(l) > 2:
			key = l[1 : len(l)-1]
		case l == "":
			key = ""
		case key != "":
			if _, ok := out[key]; !ok {
				out[key] = l
			}
		}
	}
	return out
}

// lists reports an error unless the database at rel lists entry.
func lists(fetch fetchFunc, rel, entry string) error {
	b, err := fetch(rel)
	if err != nil {
		return err
	}
	db, err := readDB(b)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if db[entry] == nil {
		return fmt.Errorf("%s does not list %s", rel, entry)
	}
	return nil
}

// verifyDB checks a database and its detached signature once: rel.sig
// verifies with gpgv against keyring, and the database (with files
// entries when files is set) lists exactly the packages of want, each
// with its file name and SHA256.
func verifyDB(fetch fetchFunc, keyring, tmp, rel string, want []pkgFile, files bool) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	b, err := fetch(rel)
	if err != nil {
		return err
	}
	sig, err := fetch(rel + ".sig")
	if err != nil {
		return err
	}
	data, sigPath := filepath.Join(tmp, path.Base(rel)), filepath.Join(tmp, path.Base(rel)+".sig")
	if err := os.WriteFile(data, b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(sigPath, sig, 0o644); err != nil {
		return err
	}
	if err := gnupg.VerifyDetached(keyring, sigPath, data); err != nil {
		return err
	}
	db, err := readDB(b)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	for _, f := range want {
		e := db[f.entry()]
		switch {
		case e == nil:
			return fmt.Errorf("%s does not list %s", rel, f.entry())
		case e.filename != f.Name || e.sha256 != f.SHA256:
			return fmt.Errorf("%s lists %s as %s with SHA256 %s, want %s with %s", rel, f.entry(), e.filename, e.sha256, f.Name, f.SHA256)
		case files && !e.files:
			return fmt.Errorf("%s has no file list for %s", rel, f.entry())
		}
	}
	if len(db) != len(want) {
		return fmt.Errorf("%s lists %d packages, want %d", rel, len(db), len(want))
	}
	return nil
}

// arches returns the architectures of pkgs other than any, sorted: those
// packyard publishes a database for.
func arches(pkgs []pkgFile) []string {
	var out []string
	for _, f := range pkgs {
		if f.Arch != "any" && !slices.Contains(out, f.Arch) {
			out = append(out, f.Arch)
		}
	}
	slices.Sort(out)
	return out
}

// landsIn reports whether a package of arch is listed in the database of
// architecture a.
func landsIn(arch, a string) bool { return arch == a || arch == "any" }

// verifyPackyard checks packyard's published repository: for each
// architecture, ARCH/REPO.db and ARCH/REPO.files verify against keyring
// and list exactly the packages of want that land there.
func verifyPackyard(fetch fetchFunc, keyring, tmp string, want []pkgFile) error {
	for _, a := range arches(want) {
		var in []pkgFile
		for _, f := range want {
			if landsIn(f.Arch, a) {
				in = append(in, f)
			}
		}
		for _, kind := range []string{"db", "files"} {
			if err := verifyDB(fetch, keyring, tmp, a+"/"+benchRepo+"."+kind, in, kind == "files"); err != nil {
				return err
			}
		}
	}
	return nil
}
