package upstream

import (
	"archive/tar"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// maxSignature bounds a %PGPSIG% signature (decoded).
const maxSignature = 16 << 10

// ScanArchDB streams a (decompressed) pacman database (a tar of NAME-VER/
// directories with desc files, as repo-add writes it) and calls fn for
// each package with its file name, sha256, size and signature. A desc
// without %FILENAME% or %SHA256SUM%, or whose file name is not a plain
// name, is an error.
func ScanArchDB(r io.Reader, fn func(Entry) error) error {
	tr := tar.NewReader(r)
	seen := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if !seen {
				return fmt.Errorf("%w: pacman database: not a tar archive with desc entries", ErrInvalid)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: pacman database: %v", ErrInvalid, err)
		}
		seen = true
		if path.Base(h.Name) != "desc" || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > maxEntry {
			return fmt.Errorf("%w: pacman database: %s is larger than %d bytes", ErrTooLarge, h.Name, maxEntry)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxEntry))
		if err != nil {
			return fmt.Errorf("%w: pacman database: %v", ErrInvalid, err)
		}
		e, err := parseDesc(string(b))
		if err != nil {
			return fmt.Errorf("pacman database: %s: %w", h.Name, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

func parseDesc(s string) (Entry, error) {
	fields := map[string]string{}
	key := ""
	for _, line := range strings.Split(s, "\n") {
		switch {
		case len(line) > 2 && strings.HasPrefix(line, "%") && strings.HasSuffix(line, "%"):
			key = line
		case line == "":
			key = ""
		case key != "" && fields[key] == "":
			fields[key] = line
		}
	}
	e := Entry{Name: fields["%NAME%"], Version: fields["%VERSION%"], Arch: fields["%ARCH%"], Path: fields["%FILENAME%"], SHA256: fields["%SHA256SUM%"], Size: -1}
	if e.Name == "" {
		return e, fmt.Errorf("%w: no %%NAME%%", ErrInvalid)
	}
	if err := CheckPath(e.Path); err != nil || strings.Contains(e.Path, "/") {
		return e, fmt.Errorf("%w: %%FILENAME%% %q is not a plain file name", ErrInvalid, e.Path)
	}
	if !isHex64(e.SHA256) {
		return e, fmt.Errorf("%w: %s has no %%SHA256SUM%%", ErrInvalid, e.Path)
	}
	if v := fields["%CSIZE%"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return e, fmt.Errorf("%w: %%CSIZE%% %q", ErrInvalid, truncate(v))
		}
		e.Size = n
	}
	if v := fields["%PGPSIG%"]; v != "" {
		if len(v) > base64.StdEncoding.EncodedLen(maxSignature) {
			return e, fmt.Errorf("%w: %%PGPSIG%% of %s is larger than %d bytes", ErrInvalid, e.Path, maxSignature)
		}
		sig, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return e, fmt.Errorf("%w: %%PGPSIG%% of %s is not base64", ErrInvalid, e.Path)
		}
		e.Signature = sig
	}
	return e, nil
}
