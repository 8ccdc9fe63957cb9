package watch

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/packyard/packyard/internal/meta"
)

// Directories of a drop folder that the watcher writes and never scans.
const (
	importedDir = "imported"
	rejectedDir = "rejected"
)

// paramSignature is the upload parameter that carries a pacman package's
// detached signature, base64-encoded (arch.ParamSignature; not imported
// so that the watcher does not depend on one format).
const paramSignature = "signature"

// maxSignatureSize bounds a NAME.pkg.tar.zst.sig file read beside its
// package; the format checks its own, lower bound.
const maxSignatureSize = 64 << 10

// kind is what the watcher makes of a file name.
type kind int

const (
	// kindTemp is a file being written under a temporary name (rsync's
	// ".name.XXXXXX", "name.part", …): waited for silently.
	kindTemp kind = iota
	// kindOther is not a package of the repository's format: left in
	// place and logged once.
	kindOther
	// kindPackage is imported.
	kindPackage
	// kindSignature is a pacman package's detached signature, imported
	// with the package beside it.
	kindSignature
)

// tempSuffixes end the names that downloaders and copy tools give files
// they are still writing (compared in lower case).
var tempSuffixes = []string{".tmp", ".part", ".partial", ".filepart", "~", ".crdownload"}

// temporary reports whether a name is hidden or a temporary name: rsync
// writes ".name.XXXXXX" and renames it, editors write "#name#".
func temporary(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") || strings.HasSuffix(name, "#") {
		return true
	}
	lower := strings.ToLower(name)
	for _, s := range tempSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// packageSuffixes are the file names a format imports.
func packageSuffixes(format string) []string {
	switch format {
	case meta.FormatRPM:
		return []string{".rpm"}
	case meta.FormatDeb:
		return []string{".deb", ".udeb"}
	case meta.FormatArch:
		return []string{".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz"}
	}
	return nil
}

// patterns describes a format's file names for messages ("*.deb, *.udeb").
func patterns(format string) string {
	var out []string
	for _, s := range packageSuffixes(format) {
		out = append(out, "*"+s)
	}
	if format == meta.FormatArch {
		out = append(out, "their *.sig")
	}
	if len(out) == 0 {
		return "none: this format takes no uploads"
	}
	return strings.Join(out, ", ")
}

// classify says what a file name is in a repository of the format.
func classify(format, name string) kind {
	if temporary(name) {
		return kindTemp
	}
	for _, s := range packageSuffixes(format) {
		if len(name) > len(s) && strings.HasSuffix(name, s) {
			return kindPackage
		}
		if format == meta.FormatArch && len(name) > len(s)+4 && strings.HasSuffix(name, s+".sig") {
			return kindSignature
		}
	}
	return kindOther
}

// numbered returns name with ".n" before its package suffix
// (foo-1.0-1.x86_64.2.rpm), so that a file moved beside one of the same
// name keeps a name its format recognises; n == 0 is the name itself.
func numbered(format, name string, n int) string {
	if n == 0 {
		return name
	}
	ext := path.Ext(name)
	for _, s := range packageSuffixes(format) {
		if strings.HasSuffix(name, s) {
			ext = s
			break
		}
	}
	return strings.TrimSuffix(name, ext) + "." + strconv.Itoa(n) + ext
}

// errNoDistribution refuses an APT package dropped where no distribution
// can be told.
var errNoDistribution = errors.New("no distribution")

// debScope returns the distribution and component of an APT package at
// rel: <distribution>/<component>/file, <distribution>/file (component
// default_component, else main) or file (default_distribution).
func debScope(rel string, c folderConfig) (dist, comp string, err error) {
	parts := strings.Split(rel, "/")
	comp = c.component
	if comp == "" {
		comp = "main"
	}
	switch len(parts) {
	case 1:
		dist = c.distribution
	case 2:
		dist = parts[0]
	case 3:
		dist, comp = parts[0], parts[1]
	default:
		return "", "", fmt.Errorf("%w: %s is too deep; use <distribution>/<component>/FILE", errNoDistribution, rel)
	}
	if dist == "" {
		return "", "", fmt.Errorf("%w: %s is directly in the drop folder of an APT repository that has no default_distribution: "+
			"move it into <distribution>/<component>/ (for instance bookworm/main/) or set the repository's default_distribution", errNoDistribution, rel)
	}
	return dist, comp, nil
}
